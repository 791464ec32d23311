import Foundation
import Hummingbird

/// The OpenAPI 3.1 document of every public endpoint (`Resources/openapi.json`, shipped as a package resource) and its
/// route, `GET /openapi.json` (no auth).
public enum OpenAPIDocument {
    /// The document's bytes as shipped: from the `KlingKit_KlingServer.resources` folder next to the executable (where
    /// SwiftPM puts it), else from the source tree this was built from; a stub saying so when neither exists (not
    /// `Bundle.module`, which stops the process when the folder is missing).
    public static let data: Data = {
        let bundle = "KlingKit_KlingServer.resources/openapi.json"
        var candidates = [Bundle.main.bundleURL.appendingPathComponent(bundle)]
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent(bundle))
        }
        candidates.append(
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Resources/openapi.json"))
        for url in candidates {
            if let data = try? Data(contentsOf: url) { return data }
        }
        return Data(#"{"openapi":"3.1.0","info":{"title":"KlingKit","version":"unknown","description":"openapi.json was not shipped"},"paths":{}}"#.utf8)
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
