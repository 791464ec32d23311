import Foundation
import KlingPostgres
import Logging
import PostgresNIO

/// A fresh, empty database on the PostgreSQL server of `KLING_TEST_DATABASE_URL` (scripts/start-postgres.sh starts
/// one), created for one test server and dropped after it. (The same helper as KlingStoreTests'; test targets share no
/// sources.)
struct PostgresTestDatabase {
    /// The server test servers store their data on: set only when `KLING_TEST_STORE=postgres` asks for it and
    /// `KLING_TEST_DATABASE_URL` names a server (the SQLite file is the default).
    static var serverURL: String? {
        let environment = ProcessInfo.processInfo.environment
        guard environment["KLING_TEST_STORE"] == "postgres" else { return nil }
        return environment["KLING_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The URL of the new database.
    let url: String
    private let name: String
    private let serverURL: String

    /// Creates `kling_test_<random>` on the server at `serverURL`.
    static func create(serverURL: String) async throws -> PostgresTestDatabase {
        let name = "kling_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await administer(serverURL) { connection, logger in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        guard var components = URLComponents(string: serverURL) else { throw URLError(.badURL) }
        components.path = "/" + name
        return PostgresTestDatabase(url: components.string ?? serverURL, name: name, serverURL: serverURL)
    }

    /// Drops the database, closing any connection still open on it.
    func drop() async throws {
        try await Self.administer(serverURL) { connection, logger in
            try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger)
        }
    }

    /// Runs `body` on one connection to the server's database from `url`.
    private static func administer(_ url: String, _ body: (PostgresConnection, Logger) async throws -> Void) async throws {
        guard let components = URLComponents(string: url), let host = components.host else { throw URLError(.badURL) }
        var database = components.path
        if database.hasPrefix("/") { database.removeFirst() }
        let configuration = PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: components.user ?? "postgres", password: components.password,
            database: database.isEmpty ? nil : database, tls: .disable)
        let logger = Logger(label: "kling.tests.postgres")
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            try await body(connection, logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}
