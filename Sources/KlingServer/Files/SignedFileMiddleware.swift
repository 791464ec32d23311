import Foundation
import Hummingbird
import KlingCore

/// Guards `/files/`: a request passes to the file server only with an authentic, unexpired signature; every other
/// request gets the same 403, whether or not the file exists.
struct SignedFileMiddleware: RouterMiddleware {
    typealias Context = KlingRequestContext
    let links: ResultLinks

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/files/") else { return try await next(request, context) }
        let query = request.uri.queryParameters
        guard let expires = query["expires"].flatMap({ Int64(String($0)) }), let signature = query["signature"].map(String.init),
            links.isAuthentic(path: path, expires: expires, signature: signature),
            links.isCurrent(expires: expires, now: TaskWorker.nowMillis() / 1000)
        else {
            return JSONResponse.make(status: 403, bytes: Self.refusal)
        }
        return try await next(request, context)
    }

    /// One fixed answer for every refused link, byte for byte.
    static let refusal = ByteBuffer(string: #"{"code":403,"msg":"this link is invalid or has expired; ask for a new one","data":null}"#)
}
