// The baseline for HTTP benchmarks: a bare Hummingbird hello-world handler on the same stack as kling-server.
import Foundation
import Hummingbird

let port = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 8090
let router = Router()
router.get("hello") { _, _ in "Hello, world!" }
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
