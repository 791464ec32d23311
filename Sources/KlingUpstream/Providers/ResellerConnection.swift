import AsyncHTTPClient
import KlingAPI
import NIOHTTP1

/// How both resellers are reached (seed 004 Market and seed 000 CRUN): a base URL, the operator's key in one header,
/// and answers in the `{code, msg|message, data}` envelope (``ResellerEnvelope``).
struct ResellerConnection: Sendable {
    let http: UpstreamHTTP
    /// The header that carries the key (`Authorization: Bearer KEY`, `x-api-key: KEY`).
    private let keyHeader: (String, String)

    init(engine: String, baseURL: String, keyHeader: (String, String), client: HTTPClient?, timeout: Duration) {
        http = UpstreamHTTP(engine: engine, baseURL: baseURL, client: client ?? UpstreamHTTP.sharedClient, timeout: timeout)
        self.keyHeader = keyHeader
    }

    /// Sends one call; returns the answer's `data` and HTTP status, or throws the error the reseller's code means.
    func call(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil, action: String) async throws -> (data: JSONValue, status: Int) {
        let answer = try await http.send(method, path, headers: [keyHeader], body: body)
        return (try ResellerEnvelope.data(answer, http: http, action: action), answer.status)
    }

    /// Creates a task with `body`; returns the reseller's task id, read from `data.<idField>`.
    func create(_ path: String, body: JSONValue, action: String, idField: String) async throws -> String {
        let (data, status) = try await call(.POST, path, body: body, action: action)
        guard let id = data[idField]?.text, !id.isEmpty else {
            throw UpstreamError.malformed(http.engine, status: status, message: "\(action) answered without data.\(idField)")
        }
        return id
    }
}
