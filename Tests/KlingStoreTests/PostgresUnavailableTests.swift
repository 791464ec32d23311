import Foundation
import KlingPostgres
import Logging
import Testing

/// A PostgreSQL server that does not answer fails the store's calls after the lease limit instead of hanging them.
@Suite("PostgreSQL unavailable", .timeLimit(.minutes(1)))
struct PostgresUnavailableTests {
    /// A loopback port nobody listens on: every connection attempt is refused, and the pool would retry for ever.
    private func deadPort() -> Int {
        let socket = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let port = withUnsafeMutablePointer(to: &address) { pointer -> Int in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(socket, $0, length); _ = getsockname(socket, $0, &length) }
            return Int(UInt16(bigEndian: pointer.pointee.sin_port))
        }
        close(socket)  // bound once for a free number, then closed: nothing listens there now
        return port
    }

    @Test func connectingToNoServerFailsWithinTheLeaseLimit() async throws {
        var configuration = try PostgresTaskStore.Configuration(url: "postgres://kling@127.0.0.1:\(deadPort())/kling?sslmode=disable")
        configuration.leaseLimit = .seconds(1)
        var logger = Logger(label: "test.postgres.unavailable")
        logger.logLevel = .critical
        await #expect(throws: DatabaseUnavailable.self) {
            _ = try await PostgresTaskStore.connect(configuration: configuration, logger: logger)
        }
    }

    /// Cancelling a call that waits for a connection ends it at once (a graceful shutdown does so to idle workers), not
    /// when the lease limit runs out.
    @Test func cancellingAWaitingCallEndsItWithoutWaitingForTheLimit() async throws {
        var configuration = try PostgresTaskStore.Configuration(url: "postgres://kling@127.0.0.1:\(deadPort())/kling?sslmode=disable")
        configuration.leaseLimit = .seconds(600)
        var logger = Logger(label: "test.postgres.unavailable")
        logger.logLevel = .critical
        let connecting = Task { try await PostgresTaskStore.connect(configuration: configuration, logger: logger) }
        try await Task.sleep(for: .milliseconds(300))
        connecting.cancel()
        // With a 10-minute limit only the cancellation can end it within the suite's 1-minute time limit.
        await #expect(throws: CancellationError.self) { _ = try await connecting.value }
    }
}
