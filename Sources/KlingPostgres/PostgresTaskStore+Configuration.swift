import Foundation
import PostgresNIO

extension PostgresTaskStore {
    /// Connection settings of the PostgreSQL store, read from a `postgres://` URL.
    public struct Configuration: Sendable {
        /// The PostgresNIO client settings (server, credentials, TLS, pool size).
        public var client: PostgresClient.Configuration
        /// How long a statement waits for a connection before it fails with ``DatabaseUnavailable`` (the server is down
        /// or unreachable): requests answer with an error instead of hanging, and a process can still stop.
        public var leaseLimit: Duration = .seconds(30)

        /// Reads `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE]` (also `postgresql://`). `sslmode` follows
        /// libpq: `disable`, `prefer` (the default: TLS when the server offers it, unverified), `require` (TLS, unverified),
        /// `verify-full` (TLS with the certificate and host name checked). A `host` query item naming a directory connects
        /// over that Unix socket instead.
        public init(url: String) throws {
            guard let components = URLComponents(string: url), let scheme = components.scheme,
                scheme == "postgres" || scheme == "postgresql"
            else { throw ConfigurationError("KLING_DATABASE_URL must look like postgres://user:password@host:5432/database") }
            let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
            let username = components.user?.removingPercentEncoding ?? "postgres"
            let password = components.password?.removingPercentEncoding
            var database = components.path
            if database.hasPrefix("/") { database.removeFirst() }
            let databaseName = database.isEmpty ? nil : database.removingPercentEncoding
            if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
                let port = components.port ?? 5432
                client = .init(
                    unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: username, password: password, database: databaseName)
                return
            }
            guard let host = components.host, !host.isEmpty else { throw ConfigurationError("KLING_DATABASE_URL has no host: \(url)") }
            let tls: PostgresClient.Configuration.TLS
            switch query["sslmode"] ?? "prefer" {
            case "disable": tls = .disable
            case "allow", "prefer":
                var settings = TLSConfiguration.makeClientConfiguration()
                settings.certificateVerification = .none
                tls = .prefer(settings)
            case "require":
                var settings = TLSConfiguration.makeClientConfiguration()
                settings.certificateVerification = .none
                tls = .require(settings)
            case "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
            case let mode: throw ConfigurationError("unknown sslmode \(mode) in KLING_DATABASE_URL")
            }
            client = .init(host: host, port: components.port ?? 5432, username: username, password: password, database: databaseName, tls: tls)
        }
    }

    /// A `postgres://` URL that cannot be used.
    public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
