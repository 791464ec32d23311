import Foundation
import KlingCore
import KlingUpstream

/// Everything `kling-server serve` is configured with; defaults are the embedded single-node set-up.
public struct ServerConfiguration: Sendable {
    /// Address to bind (`KLING_HOST`, default 127.0.0.1).
    public var host: String = "127.0.0.1"
    /// Port to bind (`--port` / `KLING_PORT`, default 8080; 0 picks a free port).
    public var port: Int = 8080
    /// Data directory holding the SQLite file and result files (`--data-dir` / `KLING_DATA_DIR`, default `./data`).
    public var dataDirectory: URL = URL(fileURLWithPath: "data", isDirectory: true)
    /// Base of result URLs (`KLING_PUBLIC_URL`, default `http://localhost:PORT`).
    public var publicURL: String?
    /// Renders at once in this process (`--workers`, default 1; 0 = API only).
    public var workers: Int = 1
    /// Whether this process serves the API (`kling-server serve`); `false` for a worker-only process (`kling-server work`),
    /// which answers only `/healthz`, `/readyz` and `/metrics`.
    public var servesAPI: Bool = true
    /// Result files and uploads, shared by every process of a multi-node set-up (`--artifact-dir` / `KLING_ARTIFACT_DIR`;
    /// default `artifacts` in the data directory).
    public var sharedArtifactDirectory: URL?
    /// Claim lease; a task whose worker dies is picked up again after it (`KLING_LEASE_SECONDS`, default 30).
    public var leaseDuration: Duration = .seconds(30)
    /// How often idle workers poll the store (`KLING_POLL_MS`, default 500).
    public var pollInterval: Duration = .milliseconds(500)
    /// Claims before a repeatedly abandoned task fails.
    public var maxAttempts: Int = 3
    /// Prices of requests (`KLING_PRICE_STD`, `KLING_PRICE_PRO`, `KLING_PRICE_4K` credits per second,
    /// `KLING_PRICE_AUDIO_FACTOR`).
    public var prices = PriceTable()
    /// Server-wide request limits (`KLING_RATE_CREATES` per `KLING_RATE_CREATE_WINDOW` seconds, `KLING_RATE_QUERIES`
    /// per second, `KLING_MAX_ACTIVE_TASKS`); accounts may override them.
    public var limits = AccountLimits()
    /// Starting grant of new accounts, including the first-start `dev` account (`KLING_DEFAULT_CREDITS`, 10,000).
    public var defaultCredits: Int64 = 10_000
    /// A task not finished this long after it was created is failed and refunded (`KLING_TASK_TIMEOUT_SECONDS`, 1800).
    public var taskTimeout: Duration = .seconds(1800)
    /// Callback delivery (`KLING_CALLBACK_TIMEOUT_SECONDS`, `KLING_CALLBACK_RETRY_DELAYS`; private addresses with
    /// `KLING_FETCH_ALLOW_PRIVATE`).
    public var callbacks = CallbackDeliverer.Configuration()
    /// Result links stay valid this long after the task completed (`KLING_RESULT_LINK_DAYS`, 14).
    public var resultLinkLifetime: Duration = .seconds(14 * 86_400)
    /// Result files are deleted this long after the task completed (`KLING_RESULT_RETENTION_DAYS`, 14).
    public var resultRetention: Duration = .seconds(14 * 86_400)
    /// Uploaded files are deleted this long after their upload (`KLING_UPLOAD_RETENTION_DAYS`, 3).
    public var uploadRetention: Duration = .seconds(3 * 86_400)
    /// Keep-alive interval of progress streams (`/api/v1/jobs/{taskId}/events`).
    public var eventKeepAlive: Duration = .seconds(15)
    /// How often expired results and uploads are looked for.
    public var retentionSweepInterval: Duration = .seconds(600)
    /// Bearer token of the admin HTTP API under `/admin/v1` (`KLING_ADMIN_TOKEN`); unset turns the API off.
    public var adminToken: String?
    /// Upstream engines, routing and provider settings (`KLING_ENGINES`, `KLING_ROUTES`, `KLING_OFFICIAL_*`,
    /// `KLING_MARKET_*`, `KLING_CRUN_*`, `KLING_UPSTREAM_*`); by default the preview engine alone.
    public var upstream = UpstreamConfiguration()

    public init() {}

    /// The SQLite database file.
    public var databasePath: String { dataDirectory.appendingPathComponent("kling.sqlite").path }
    /// Where result files and uploads live (served under `/files/`).
    public var artifactDirectory: URL {
        sharedArtifactDirectory ?? dataDirectory.appendingPathComponent("artifacts", isDirectory: true)
    }

    /// Worker settings derived from this configuration.
    public var workerConfiguration: TaskWorker.Configuration {
        var configuration = TaskWorker.Configuration(artifactDirectory: artifactDirectory)
        // Following an upstream task costs no CPU: a process with workers follows up to `upstream.openTasks` at once
        // (local renders stay limited to `workers` by the router).
        configuration.concurrency = upstream.usesUpstream && workers > 0 ? max(workers, upstream.openTasks) : workers
        configuration.leaseDuration = leaseDuration
        configuration.heartbeatInterval = leaseDuration / 3
        configuration.pollInterval = pollInterval
        configuration.maxAttempts = maxAttempts
        return configuration
    }
}
