import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import KlingCore
import KlingKit
import KlingPreview
import KlingSQLite
import KlingServer
import KlingTestSupport
import Logging
import Testing

/// A real kling-server on loopback (the pattern of KlingServerTests' TestServer): a fresh SQLite file, account
/// "alice" with an API key and a Kling access key / secret key pair, and clients for it in every dialect.
struct LiveServer: Sendable {
    let directory: URL
    let store: SQLiteTaskStore
    let configuration: ServerConfiguration
    /// Alice's API key.
    let key: String
    /// Alice's Kling access key and secret key.
    let accessKey: String
    let secretKey: String

    static func make(
        workers: Int = 1, credits: Int64 = 100_000, configure: @Sendable (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> LiveServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("klingkit-test-\(UUID().uuidString)", isDirectory: true)
        var configuration = ServerConfiguration.forTests(directory: directory, workers: workers)
        configure(&configuration)
        let store = try SQLiteTaskStore.sqlite(path: configuration.databasePath)
        let accounts = AccountService(store: store)
        _ = try await accounts.createAccount(name: "alice", credits: credits)
        let key = try await accounts.createKey(accountName: "alice").key
        let jwt = try await accounts.createJWTCredential(accountName: "alice")
        return LiveServer(
            directory: directory, store: store, configuration: configuration, key: key, accessKey: jwt.accessKey, secretKey: jwt.secretKey)
    }

    /// Runs `body` with the base URL of the live server, then removes the data directory.
    func run<T: Sendable>(_ body: @Sendable (_ baseURL: String) async throws -> T) async throws -> T {
        defer { try? FileManager.default.removeItem(at: directory) }
        var logger = Logger(label: "klingkit-test")
        logger.logLevel = .warning
        var fetching = HTTPInputFetcher.Configuration()
        fetching.allowPrivateAddresses = true
        let app = try await buildApplication(
            configuration: configuration, store: store, fetcher: HTTPInputFetcher(configuration: fetching),
            makeEngine: { PreviewEngine(fetcher: $0) }, logger: logger)
        return try await app.test(.live) { client in
            try await body("http://127.0.0.1:\(try #require(client.port))")
        }
    }

    /// A client of this server in `dialect`: API key credentials, or Kling access keys when `jwt` is set.
    func client(_ baseURL: String, _ dialect: KlingClient.Dialect, jwt: Bool = false) -> KlingClient {
        let credentials: KlingClient.Credentials = jwt ? .accessKey(accessKey, secretKey: secretKey) : dialect.credentials(apiKey: key)
        return KlingClient(
            configuration: .init(
                baseURL: baseURL, credentials: credentials, dialect: dialect,
                polling: .init(initialInterval: .milliseconds(200), laterInterval: .milliseconds(500), slowInterval: .seconds(1), ceiling: .seconds(240))))
    }

    func totalTasks() async throws -> Int {
        try await store.taskCounts().values.reduce(0, +)
    }

    /// Alice's current webhook secrets (created on first use).
    func webhookSecrets() async throws -> [String] {
        let account = try #require(try await store.account(named: "alice"))
        return try await store.webhookSecrets(accountID: account.id, now: TaskWorker.nowMillis())
    }
}

/// Small test inputs.
enum TestMedia {
    /// A PNG of `width`x`height` made by ffmpeg in a fresh folder.
    static func png(width: Int = 640, height: Int = 360, color: String = "orange") async throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("klingkit-media-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("frame.png")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=\(color):s=\(width)x\(height)", "-frames:v", "1", file.path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return file
    }

    /// Whether the file starts like an MP4 (an `ftyp` box).
    static func isMP4(_ file: URL) -> Bool {
        guard let data = try? Data(contentsOf: file), data.count > 12 else { return false }
        return String(decoding: data[4..<8], as: UTF8.self) == "ftyp"
    }
}
