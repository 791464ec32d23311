#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IPv4 or IPv6 address as raw bytes, with the classification the input fetcher's address rule needs.
struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 bytes (IPv6), network order.
    let bytes: [UInt8]

    init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses a numeric address in its standard text form (`inet_pton`: no shorthand such as `127.1`), with or
    /// without IPv6 brackets.
    init?(_ text: String) {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        var v4 = in_addr()
        if inet_pton(AF_INET, String(text), &v4) == 1 {
            self.bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, String(text), &v6) == 1 {
            self.bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }

    var isV4: Bool { bytes.count == 4 }

    /// The standard text form (`inet_ntop`).
    var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        var copy = bytes
        let family = isV4 ? AF_INET : AF_INET6
        guard inet_ntop(family, &copy, &buffer, socklen_t(buffer.count)) != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Why a fetch must not connect here (loopback, private, link-local, ...), or `nil` for a public unicast address.
    ///
    /// IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`,
    /// 6to4 `2002::/16`) are judged by that IPv4 address.
    var nonPublicReason: String? {
        isV4 ? Self.v4Reason(bytes) : v6Reason
    }

    private static func v4Reason(_ b: [UInt8]) -> String? {
        switch (b[0], b[1]) {
        case (0, _): return "an unspecified (0.0.0.0/8) address"
        case (10, _): return "a private (10.0.0.0/8) address"
        case (100, 64...127): return "a carrier-grade NAT (100.64.0.0/10) address"
        case (127, _): return "a loopback address"
        case (169, 254): return "a link-local (169.254.0.0/16) address"
        case (172, 16...31): return "a private (172.16.0.0/12) address"
        case (192, 168): return "a private (192.168.0.0/16) address"
        case (192, 0) where b[2] == 0: return "an IETF protocol (192.0.0.0/24) address"
        case (198, 18...19): return "a benchmarking (198.18.0.0/15) address"
        case (224...239, _): return "a multicast address"
        case (240...255, _): return "a reserved or broadcast address"
        default: return nil
        }
    }

    private var v6Reason: String? {
        let b = bytes
        let v4Tail = Array(b[12..<16])
        if b[0..<15].allSatisfy({ $0 == 0 }) {
            return b[15] == 1 ? "a loopback address" : (b[15] == 0 ? "an unspecified address" : "a reserved (::/96) address")
        }
        if b[0..<10].allSatisfy({ $0 == 0 }) {
            if b[10] == 0xFF, b[11] == 0xFF { return Self.v4Reason(v4Tail).map { "an IPv4-mapped form of \($0)" } }
            if b[10] == 0, b[11] == 0 { return Self.v4Reason(v4Tail).map { "an IPv4-compatible form of \($0)" } ?? "a reserved (::/96) address" }
        }
        if b[0] == 0x00, b[1] == 0x64, b[2] == 0xFF, b[3] == 0x9B, b[4..<12].allSatisfy({ $0 == 0 }) {
            return Self.v4Reason(v4Tail).map { "a NAT64 form of \($0)" }
        }
        if b[0] == 0x20, b[1] == 0x02 { return Self.v4Reason(Array(b[2..<6])).map { "a 6to4 form of \($0)" } }
        if b[0] & 0xFE == 0xFC { return "a unique-local (fc00::/7) address" }
        if b[0] == 0xFE, b[1] & 0xC0 == 0x80 { return "a link-local (fe80::/10) address" }
        if b[0] == 0xFE, b[1] & 0xC0 == 0xC0 { return "a site-local (fec0::/10) address" }
        if b[0] == 0xFF { return "a multicast address" }
        return nil
    }
}
