import Hummingbird
import KlingCore

/// Per-request state: the authenticated account, once an auth middleware has found it.
public struct KlingRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The caller's account; set by ``APIKeyAuthMiddleware``.
    public var account: Account?
    /// Hash of the caller's API key (what rate limits are kept per); set with ``account``.
    public var apiKeyHash: String?

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.account = nil
        self.apiKeyHash = nil
    }

    /// Create bodies are small JSON documents; anything larger is refused with 413.
    public var maxUploadSize: Int { 1 << 20 }

    /// The account, or a 401 for routes behind auth (never reached without the middleware).
    func requireAccount() throws -> Account {
        guard let account else { throw APIError.unauthorized("missing API key") }
        return account
    }
}
