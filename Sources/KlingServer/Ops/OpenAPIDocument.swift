import Foundation
import Hummingbird

/// The OpenAPI 3.1 document of every public endpoint (`Resources/openapi.json`, shipped as a package resource) and its
/// route, `GET /openapi.json` (no auth).
public enum OpenAPIDocument {
    /// The document's bytes as shipped.
    public static let data: Data = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"), let data = try? Data(contentsOf: url) else {
            return Data(#"{"openapi":"3.1.0","info":{"title":"KlingKit","version":"unknown","description":"openapi.json was not shipped"},"paths":{}}"#.utf8)
        }
        return data
    }()

    static func register(on router: Router<KlingRequestContext>) {
        let body = ByteBuffer(data: data)
        router.get("openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-cache"],
                body: ResponseBody(byteBuffer: body))
        }
    }
}
