import ArgumentParser
import Foundation
import KlingCore
import KlingPostgres
import KlingPreview
import KlingSQLite
import KlingServer
import Logging
import Metrics
import Prometheus

/// `kling-server`: runs the platform and administers its accounts.
@main
struct KlingServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kling-server",
        abstract: "KlingKit: a self-hostable, Kling 3.0 compatible video generation server.",
        subcommands: [
            Serve.self, Work.self, Accounts.self, Keys.self, Credits.self, Ledger.self, Limits.self, Maintenance.self, Features.self,
            Webhooks.self, Callbacks.self,
        ],
        defaultSubcommand: Serve.self
    )
}

/// Options every command shares: where the data lives.
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Data directory (SQLite file and results). Env: KLING_DATA_DIR. Default: ./data")
    var dataDirectory: String?

    var resolvedDataDirectory: URL {
        let path = dataDirectory ?? ProcessInfo.processInfo.environment["KLING_DATA_DIR"] ?? "data"
        return URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
    }

    /// The PostgreSQL database of `KLING_DATABASE_URL` (migrated on opening) when it is set, else the SQLite file in
    /// the data directory.
    func openStore() async throws -> any TaskStore {
        if let url = try EnvironmentSettings.databaseURL(ProcessInfo.processInfo.environment) {
            return try await PostgresTaskStore.connect(url: url)
        }
        var configuration = ServerConfiguration()
        configuration.dataDirectory = resolvedDataDirectory
        return try SQLiteTaskStore.sqlite(path: configuration.databasePath)
    }

    /// Closes the store's connections (PostgreSQL) once the process is done with it.
    func close(_ store: any TaskStore) async {
        await (store as? PostgresTaskStore)?.close()
    }

    /// Account administration on this data directory (or database).
    func accountService() async throws -> AccountService { AccountService(store: try await openStore()) }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP API and its workers (the default command); --workers 0 runs an API-only process.")

    @OptionGroup var process: ProcessOptions
    @Option(help: "Concurrent renders in this process; 0 runs an API-only process. Env: KLING_WORKERS. Default: 1") var workers: Int?

    func run() async throws {
        try await process.run(servesAPI: true, workers: workers, defaultPort: 8080)
    }
}

struct Work: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run workers only: claim and render tasks from the shared store, no API (only /healthz, /readyz, /metrics).",
        discussion: """
            For multi-node set-ups on PostgreSQL (KLING_DATABASE_URL) with a shared KLING_ARTIFACT_DIR. Set KLING_PUBLIC_URL \
            to the API's address so result links in callbacks point there; without it this process leaves callbacks to \
            the API processes.
            """)

    @OptionGroup var process: ProcessOptions
    @Option(help: "Concurrent renders in this process. Env: KLING_WORKERS. Default: 1") var workers: Int?

    func run() async throws {
        try await process.run(servesAPI: false, workers: workers, defaultPort: 8081)
    }
}

/// Settings of the processes that run the platform (`serve` and `work`).
struct ProcessOptions: ParsableArguments {
    @OptionGroup var data: DataOptions
    @Option(help: "Port to listen on. Env: KLING_PORT. Default: 8080 (serve), 8081 (work)") var port: Int?
    @Option(help: "Address to bind. Env: KLING_HOST. Default: 127.0.0.1") var host: String?
    @Option(
        name: .customLong("artifact-dir"),
        help: "Result files and uploads, shared by every process of a multi-node set-up. Env: KLING_ARTIFACT_DIR. Default: DATA_DIR/artifacts")
    var artifactDirectory: String?
    @Option(
        name: .customLong("log-format"),
        help: "Log lines as json (one object per line) or text. Env: KLING_LOG_FORMAT. Default: json when stderr is not a terminal, else text")
    var logFormat: String?

    func run(servesAPI: Bool, workers: Int?, defaultPort: Int) async throws {
        let environment = ProcessInfo.processInfo.environment
        var configuration = ServerConfiguration()
        configuration.servesAPI = servesAPI
        configuration.dataDirectory = data.resolvedDataDirectory
        if let path = artifactDirectory ?? environment["KLING_ARTIFACT_DIR"].flatMap({ $0.isEmpty ? nil : $0 }) {
            configuration.sharedArtifactDirectory = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
        }
        configuration.port = try port ?? environment["KLING_PORT"].map { try Serve.integer($0, name: "KLING_PORT") } ?? defaultPort
        configuration.host = host ?? environment["KLING_HOST"] ?? "127.0.0.1"
        configuration.workers = try workers ?? environment["KLING_WORKERS"].map { try Serve.integer($0, name: "KLING_WORKERS") } ?? 1
        configuration.publicURL = environment["KLING_PUBLIC_URL"].flatMap { $0.isEmpty ? nil : $0 }
        if let lease = environment["KLING_LEASE_SECONDS"] {
            configuration.leaseDuration = .seconds(try Serve.integer(lease, name: "KLING_LEASE_SECONDS"))
        }
        if let poll = environment["KLING_POLL_MS"] {
            configuration.pollInterval = .milliseconds(try Serve.integer(poll, name: "KLING_POLL_MS"))
        }
        guard configuration.workers >= (servesAPI ? 0 : 1) else {
            throw ValidationError(servesAPI ? "--workers must be 0 or more" : "--workers must be 1 or more for kling-server work")
        }
        try EnvironmentSettings.apply(environment, to: &configuration)

        let format = try (logFormat ?? environment["KLING_LOG_FORMAT"].flatMap { $0.isEmpty ? nil : $0 }).map {
            guard let format = LogFormat(rawValue: $0.lowercased()) else {
                throw ValidationError("--log-format / KLING_LOG_FORMAT must be json or text, not \($0)")
            }
            return format
        } ?? LogFormat.automatic
        format.bootstrap()
        MetricsSystem.bootstrap(PrometheusMetricsFactory())
        var logger = Logger(label: "kling-server")
        logger.logLevel = environment["KLING_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info

        let store = try await data.openStore()
        if servesAPI, let key = try await AccountService(store: store).bootstrapIfEmpty(credits: configuration.defaultCredits) {
            let url = configuration.publicURL ?? "http://localhost:\(configuration.port)"
            // Written straight to the file descriptor: visible at once even when stdout is a file or a pipe.
            FileHandle.standardOutput.write(
                Data(
                    """
                    Created the development account "dev" with \(configuration.defaultCredits) credits and this API key (shown once; keep it):

                        \(key)

                    Try it:

                        curl -s \(url)/api/v1/jobs/createTask \\
                          -H 'Authorization: Bearer \(key)' -H 'Content-Type: application/json' \\
                          -d '{"model":"kling-3.0/video","input":{"prompt":"A red fox runs through snow at dawn","duration":"5","mode":"std","sound":true}}'

                        curl -s '\(url)/api/v1/jobs/recordInfo?taskId=TASK_ID' -H 'Authorization: Bearer \(key)'

                    """.utf8))
        }
        if !servesAPI && configuration.publicURL == nil {
            logger.warning("KLING_PUBLIC_URL is not set: this worker leaves callback delivery to the API processes")
        }
        var fetching = HTTPInputFetcher.Configuration()
        fetching.allowPrivateAddresses =
            try environment["KLING_FETCH_ALLOW_PRIVATE"].map { try Serve.boolean($0, name: "KLING_FETCH_ALLOW_PRIVATE") } ?? false
        if fetching.allowPrivateAddresses {
            logger.warning("KLING_FETCH_ALLOW_PRIVATE=true: input URLs may reach loopback and private addresses (development only)")
        }
        configuration.callbacks.allowPrivateAddresses = fetching.allowPrivateAddresses
        var preview = PreviewEngine.Configuration()
        // Empty leaves the choice to ffmpeg; unset keeps the default (`+slowgather` on AMD processors).
        if let flags = environment["KLING_FFMPEG_CPUFLAGS"] {
            guard flags.isEmpty || PreviewEngine.Configuration.acceptsCPUFlags(flags) else {
                throw ValidationError("KLING_FFMPEG_CPUFLAGS must be ffmpeg -cpuflags flags such as +slowgather or -avx2, not \(flags)")
            }
            preview.cpuFlags = flags.isEmpty ? nil : flags
        }
        preview.warmProcesses = try environment["KLING_FFMPEG_WARM"].map { try Serve.boolean($0, name: "KLING_FFMPEG_WARM") } ?? true
        let app = try await buildApplication(
            configuration: configuration, store: store, fetcher: HTTPInputFetcher(configuration: fetching),
            makeEngine: { [preview] in PreviewEngine(configuration: preview, fetcher: $0) }, logger: logger)
        do {
            try await app.runService()
        } catch {
            await data.close(store)
            throw error
        }
        await data.close(store)
    }
}

extension Serve {
    static func boolean(_ text: String, name: String) throws -> Bool {
        switch text.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no", "": return false
        default: throw ValidationError("\(name) must be true or false, not \(text)")
        }
    }

    static func integer(_ text: String, name: String) throws -> Int {
        guard let value = Int(text) else { throw ValidationError("\(name) must be a whole number, not \(text)") }
        return value
    }
}
