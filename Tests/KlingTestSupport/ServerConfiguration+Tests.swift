import Foundation
import KlingServer

extension ServerConfiguration {
    /// A server for tests: a fresh data directory, a free port on loopback, quick polls and callback retries, no rate
    /// limits (tests fire requests faster than any client should), and callbacks allowed to reach loopback receivers.
    public static func forTests(directory: URL, workers: Int) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.dataDirectory = directory
        configuration.port = 0
        configuration.workers = workers
        configuration.pollInterval = .milliseconds(100)
        configuration.limits.createsPerWindow = 0
        configuration.limits.queriesPerSecond = 0
        configuration.limits.maxActiveTasks = 1000
        configuration.callbacks.allowPrivateAddresses = true
        configuration.callbacks.retryDelays = [.milliseconds(300), .milliseconds(300), .milliseconds(300)]
        configuration.callbacks.pollInterval = .milliseconds(100)
        configuration.callbacks.timeout = .seconds(10)
        return configuration
    }
}
