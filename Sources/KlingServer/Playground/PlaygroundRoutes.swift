import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The web playground: `GET /` (the page) and `GET /playground/{file}` (its script, style and icon), plain files
/// shipped in the package's resource bundle and served from memory with a strict Content-Security-Policy.
struct PlaygroundRoutes {
    /// One file of the page.
    struct Asset: Sendable {
        var bytes: ByteBuffer
        var contentType: String
    }

    /// The page's files by name (`index.html`, `playground.js`, ...); empty when the bundle was not found.
    let assets: [String: Asset]
    let links: ResultLinks

    /// Media types of the files the page is made of.
    static let contentTypes = [
        "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
        "svg": "image/svg+xml",
    ]

    init(links: ResultLinks, directory: URL? = PlaygroundRoutes.bundledDirectory(), logger: Logger) {
        self.links = links
        var assets: [String: Asset] = [:]
        if let directory, let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) {
            for name in names {
                guard let type = Self.contentTypes[(name as NSString).pathExtension],
                    let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path)
                else { continue }
                assets[name] = Asset(bytes: ByteBuffer(data: data), contentType: type)
            }
        }
        if assets["index.html"] == nil {
            logger.warning("playground files not found (KlingKit_KlingServer.resources next to the executable); GET / answers 404")
        }
        self.assets = assets
    }

    /// The `Web` folder of the package's resource bundle, looked up next to the executable (where SwiftPM puts it)
    /// without the generated `Bundle.module`, which stops the process when the bundle is missing.
    static func bundledDirectory() -> URL? {
        let bundleName = "KlingKit_KlingServer.resources"
        var folders = [Bundle.main.bundleURL]
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() { folders.append(executable.deletingLastPathComponent()) }
        folders += Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() }
        for folder in folders {
            if let bundle = Bundle(url: folder.appendingPathComponent(bundleName)),
                let web = bundle.url(forResource: "Web", withExtension: nil)
            {
                return web
            }
        }
        return nil
    }

    func register(on router: Router<KlingRequestContext>) {
        router.get("/") { _, _ in serve("index.html") }
        router.get("playground/:file") { _, context in serve(try context.parameters.require("file")) }
    }

    private func serve(_ name: String) -> Response {
        guard let asset = assets[name] else {
            return Response(
                status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: "not found\n")))
        }
        var headers: HTTPFields = [
            .contentType: asset.contentType, .cacheControl: "no-cache",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
        ]
        if name.hasSuffix(".html") {
            headers[.contentSecurityPolicy] = contentSecurityPolicy()
            headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: asset.bytes))
    }

    /// Only this server's own script, style and API; videos and images also from the public URL result links use.
    func contentSecurityPolicy() -> String {
        var media = "'self' blob: data:"
        if let origin = Self.origin(of: links.baseURL) { media += " \(origin)" }
        return "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src \(media); media-src \(media); "
            + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    }

    /// `scheme://host[:port]` of a URL.
    static func origin(of url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else { return nil }
        return "\(scheme)://\(host)\(components.port.map { ":\($0)" } ?? "")"
    }
}
