import Foundation
import KlingCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Resolves host names with the system resolver (`getaddrinfo`) off the cooperative thread pool.
enum HostResolver {
    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    /// Every IPv4 and IPv6 address `host` resolves to, in the resolver's order, without duplicates.
    static func addresses(of host: String) async throws -> [IPAddress] {
        if let literal = IPAddress(host) { return [literal] }
        // getaddrinfo blocks.
        return try await OwnThread.run { try blockingResolve(host) }
    }

    private static func blockingResolve(_ host: String) throws -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Darwin)
            hints.ai_socktype = SOCK_STREAM
        #else
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let first = list else {
            throw Failed(description: "could not resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(first) }
        var result: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let address = entry.pointee.ai_addr {
                var parsed: IPAddress?
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    parsed = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        var raw = pointer.pointee.sin_addr
                        return IPAddress(bytes: withUnsafeBytes(of: &raw) { Array($0) })
                    }
                case AF_INET6:
                    parsed = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        var raw = pointer.pointee.sin6_addr
                        return IPAddress(bytes: withUnsafeBytes(of: &raw) { Array($0) })
                    }
                default: break
                }
                if let parsed, !result.contains(parsed) { result.append(parsed) }
            }
            cursor = entry.pointee.ai_next
        }
        guard !result.isEmpty else { throw Failed(description: "\(host) has no IPv4 or IPv6 address") }
        return result
    }
}
