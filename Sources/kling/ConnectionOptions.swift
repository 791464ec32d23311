import ArgumentParser
import AsyncHTTPClient
import Foundation
import KlingKit

/// The CLI's HTTP client: a refused connection fails at once (KlingClient retries it twice, briefly) instead of
/// AsyncHTTPClient's default of retrying until the request deadline; 10 s to connect. Lives as long as the process.
let commandLineHTTPClient: HTTPClient = {
    var configuration = HTTPClient.Configuration()
    configuration.timeout.connect = .seconds(10)
    configuration.connectionPool.retryConnectionEstablishment = false
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
}()

extension KlingClient.Dialect: ExpressibleByArgument {}

/// Where and as whom `kling` connects: flags first, then `KLING_*` environment variables.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("base-url"), help: "The provider's base URL (env KLING_BASE_URL; default http://localhost:8080).")
    var baseURL: String?

    @Option(name: .customLong("api-key"), help: "The API key (env KLING_API_KEY).")
    var apiKey: String?

    @Option(help: "The wire dialect: market, crun or kling (env KLING_DIALECT; default market).")
    var dialect: KlingClient.Dialect?

    @Option(name: .customLong("access-key"), help: "A Kling access key, with --secret-key, for JWTs (env KLING_ACCESS_KEY).")
    var accessKey: String?

    @Option(name: .customLong("secret-key"), help: "The Kling secret key that signs the JWTs (env KLING_SECRET_KEY).")
    var secretKey: String?

    @Option(help: "Seconds between status queries at first (then longer).")
    var pollInterval: Double = 2

    @Option(help: "Give up waiting after this many seconds (the task goes on; default 1800).")
    var timeout: Double = 1800

    /// A client for these options, or a usage error saying which setting is missing.
    func client() throws -> KlingClient {
        let environment = ProcessInfo.processInfo.environment
        let base = baseURL ?? environment["KLING_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://localhost:8080"
        var dialect = self.dialect
        if dialect == nil, let name = environment["KLING_DIALECT"], !name.isEmpty {
            guard let parsed = KlingClient.Dialect(rawValue: name) else {
                throw ValidationError("KLING_DIALECT must be market, crun or kling (got \(name))")
            }
            dialect = parsed
        }
        let access = accessKey ?? environment["KLING_ACCESS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let secret = secretKey ?? environment["KLING_SECRET_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let key = apiKey ?? environment["KLING_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let credentials: KlingClient.Credentials
        if let key {
            credentials = (dialect ?? .market).credentials(apiKey: key)
        } else if let access, let secret {
            credentials = .accessKey(access, secretKey: secret)
            dialect = dialect ?? .klingOfficial
        } else {
            throw ValidationError(
                "no credentials: set KLING_API_KEY or pass --api-key (create a key with `kling-server keys create --account NAME`),"
                    + " or pass --access-key and --secret-key for the kling dialect")
        }
        guard pollInterval > 0, timeout > 0 else { throw ValidationError("--poll-interval and --timeout must be positive") }
        let initial = Duration.milliseconds(Int64(pollInterval * 1000))
        let polling = KlingClient.PollingPolicy(
            initialInterval: initial, laterInterval: max(initial, .seconds(5)), slowInterval: max(initial, .seconds(15)),
            ceiling: .milliseconds(Int64(timeout * 1000)))
        return KlingClient(
            configuration: .init(baseURL: base, credentials: credentials, dialect: dialect ?? .market, polling: polling),
            httpClient: commandLineHTTPClient)
    }
}
