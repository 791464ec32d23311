import Foundation
import Logging
import PostgresNIO

/// A fresh, empty database on the PostgreSQL server of `KLING_TEST_DATABASE_URL` (scripts/start-postgres.sh starts
/// one), created for one test and dropped after it. Shared by the store and server test targets.
public struct PostgresTestDatabase: Sendable {
    /// The server tests use, when one is configured.
    public static var serverURL: String? {
        ProcessInfo.processInfo.environment["KLING_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The URL of the new database.
    public let url: String
    private let name: String
    private let serverURL: String

    /// Creates `kling_test_<random>` on the server at `serverURL`.
    public static func create(serverURL: String) async throws -> PostgresTestDatabase {
        let name = "kling_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await administer(serverURL) { connection, logger in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        guard var components = URLComponents(string: serverURL) else { throw URLError(.badURL) }
        components.path = "/" + name
        return PostgresTestDatabase(url: components.string ?? serverURL, name: name, serverURL: serverURL)
    }

    /// Drops the database, closing any connection still open on it.
    public func drop() async throws {
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
