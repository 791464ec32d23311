import Foundation
import Hummingbird
import HummingbirdTesting

/// Runs a small Hummingbird router on loopback for the duration of `body`, which gets its base URL.
func withLoopbackApp<T: Sendable>(_ router: Router<BasicRequestContext>, _ body: @Sendable (String) async throws -> T) async throws -> T {
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    return try await app.test(.live) { client in
        try await body("http://127.0.0.1:\(client.port ?? 0)")
    }
}
