import Foundation

/// The address rule for every request the server makes to a user-supplied URL (callbacks use it; input fetches
/// apply the same rule inside ``HTTPInputFetcher``): http or https only, and every address the host resolves to
/// must be public unless private addresses are allowed (`KLING_FETCH_ALLOW_PRIVATE=true`).
public enum OutboundAddress {
    /// A URL that passed the rule, with the address its connection must go to (`nil` for an IP literal).
    public struct Checked: Sendable {
        public var host: String
        /// Pin this with AsyncHTTPClient's `dnsOverride` so a changed DNS answer cannot redirect the connection.
        public var pinnedAddress: String?
    }

    /// Why a URL was refused.
    public struct Refused: Error, Sendable, CustomStringConvertible {
        /// Only the name lookup failed (it may work later); the other refusals are final.
        public var isUnresolvable = false
        public var description: String
    }

    /// Resolves and checks `url`; throws ``Refused`` naming the reason.
    public static func check(_ url: String, allowPrivate: Bool) async throws -> Checked {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let rawHost = parsed.host, !rawHost.isEmpty
        else {
            throw Refused(description: "\(url) is not an http or https URL")
        }
        let host = rawHost.hasPrefix("[") && rawHost.hasSuffix("]") ? String(rawHost.dropFirst().dropLast()) : rawHost
        let addresses: [IPAddress]
        do {
            addresses = try await HostResolver.addresses(of: host)
        } catch {
            throw Refused(isUnresolvable: true, description: "\(error)")
        }
        if !allowPrivate {
            for address in addresses {
                if let reason = address.nonPublicReason {
                    let resolved = IPAddress(host) == nil ? "\(host) resolves to \(address)," : "\(address) is"
                    throw Refused(description: "refused \(url): \(resolved) \(reason); only public addresses are allowed")
                }
            }
        }
        return Checked(host: host, pinnedAddress: IPAddress(host) == nil ? addresses.first.map { "\($0)" } : nil)
    }
}
