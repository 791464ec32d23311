import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import ServiceLifecycle

/// Runs a fake's router on a free loopback port for the duration of `body`, which gets the base URL; the server is
/// shut down when `body` returns or throws. With `webSocket`, requests to `/ws...` are upgraded and handed to it with
/// their path and query.
enum LoopbackServer {
    typealias WebSocketHandler = @Sendable (_ path: String, _ outbound: WebSocketOutboundWriter) async throws -> Void

    static func run<T: Sendable>(
        _ router: Router<BasicRequestContext>, name: String, webSocket: WebSocketHandler? = nil, _ body: @Sendable (String) async throws -> T
    ) async throws -> T {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: name)
        logger.logLevel = .error
        let server: HTTPServerBuilder =
            webSocket.map { handler in
                .http1WebSocketUpgrade { request, _, _ in
                    guard let path = request.path, path.hasPrefix("/ws") else { return .dontUpgrade }
                    return .upgrade([:]) { _, outbound, _ in try await handler(path, outbound) }
                }
            } ?? .http1()
        let app = Application(
            router: router, server: server, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: name),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        return try await withThrowingTaskGroup(of: T?.self) { tasks in
            tasks.addTask {
                try await group.run()
                return nil
            }
            var port = 0
            for await value in ports { port = value }
            let result: Result<T, any Error>
            do {
                result = .success(try await body("http://127.0.0.1:\(port)"))
            } catch {
                result = .failure(error)
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return try result.get()
        }
    }
}
