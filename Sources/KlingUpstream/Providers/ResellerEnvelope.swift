import KlingAPI

/// The `{code, msg|message, data}` envelope both resellers answer with (seed 004 and seed 000 share the code list).
enum ResellerEnvelope {
    /// The `data` of a successful answer (`code` 200), or the error the reseller's code means.
    static func data(_ answer: UpstreamHTTP.Answer, http: UpstreamHTTP, action: String) throws -> JSONValue {
        let code = answer.json?["code"]?.integer ?? answer.status
        let message = answer.json?["msg"]?.text ?? answer.json?["message"]?.text ?? "no message"
        if (200..<300).contains(answer.status), code == 200, let data = answer.json?["data"], data != .null { return data }
        let described = "\(action) refused with code \(code): \(message)"
        switch code {
        case 429: throw UpstreamError.rateLimited(http.engine, status: answer.status, message: described, retryAfter: answer.retryAfter)
        case 401, 403: throw UpstreamError.unauthorized(http.engine, status: answer.status, message: described)
        // Out of credits, maintenance, a feature switched off, a server error: another engine may still serve.
        case 402, 455, 505, 500, 502, 503, 504:
            throw UpstreamError.unavailable(http.engine, status: answer.status, message: described, retryAfter: answer.retryAfter)
        case 200:
            throw UpstreamError.malformed(http.engine, status: answer.status, message: "\(action) answered code 200 without data")
        default:
            throw http.failure(status: answer.status >= 400 ? answer.status : code, message: described, retryAfter: answer.retryAfter)
        }
    }
}
