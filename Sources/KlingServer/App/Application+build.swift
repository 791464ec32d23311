import Foundation
import Hummingbird
import KlingCore
import KlingUpstream
import Logging
import Prometheus
import ServiceLifecycle

/// Builds the whole server: routes of every dialect, result file serving and the task worker.
///
/// A worker-only process (``ServerConfiguration/servesAPI`` off) answers just `/healthz`, `/readyz` and `/metrics`;
/// an API-only one has no workers. Tests call this with a temporary data directory and port 0; `kling-server serve`
/// and `kling-server work` call it with the real settings.
public func buildApplication(
    configuration: ServerConfiguration,
    store: any TaskStore,
    fetcher: any InputFetching,
    makeEngine: (any InputFetching) -> any VideoEngine,
    logger: Logger
) async throws -> some ApplicationProtocol {
    let results = configuration.artifactDirectory.appendingPathComponent("results", isDirectory: true)
    let uploads = configuration.artifactDirectory.appendingPathComponent("uploads", isDirectory: true)
    for folder in [results, uploads] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
    let signal = WakeSignal()
    let tasks = TaskService(store: store, signal: signal, prices: configuration.prices, defaultLimits: configuration.limits)
    let links = ResultLinks(
        publicURL: configuration.publicURL, signingKey: try await store.installationSecret("file-links"),
        resultLifetime: configuration.resultLinkLifetime)
    // Engines read this server's own file links from disk; everything else goes through the safe network fetcher.
    let inputs = LocalFileFetcher(links: links, artifactDirectory: configuration.artifactDirectory, network: fetcher)
    // Upstream engines (KLING_ENGINES, KLING_ROUTES): a router over them and the local engine; the local engine alone
    // when none is configured. Providers call back to our own signed endpoint; results are downloaded by the safe fetcher.
    // A worker-only process has no route for them: providers are called back at the API's public URL, or polled.
    let upstreamCallbacks =
        configuration.upstream.usesUpstream && (configuration.servesAPI || configuration.publicURL != nil)
        ? UpstreamCallbacks(secret: try await store.installationSecret("upstream-callbacks"), baseURL: { links.baseURL }) : nil
    let engine = try await configuration.upstream.makeEngine(
        local: makeEngine(inputs), localConcurrency: configuration.workers, store: store, fetcher: fetcher, inputs: inputs,
        callbacks: upstreamCallbacks, logger: logger)

    let router = Router(context: KlingRequestContext.self)
    // Outermost: a request id on every response and in every log line of the request.
    router.add(middleware: RequestIDMiddleware())
    // Requests by route and status, with latency, into whatever metrics backend the process bootstrapped.
    router.add(middleware: MetricsMiddleware())
    router.get("healthz") { _, _ in "ok" }
    OpsRoutes(
        store: store, workers: configuration.workers, ffmpeg: "ffmpeg", registry: PrometheusMetricsFactory.defaultRegistry
    ).register(on: router)
    if configuration.servesAPI {
        registerAPI(
            on: router, configuration: configuration, store: store, tasks: tasks, links: links, fetcher: fetcher,
            upstreamCallbacks: upstreamCallbacks, logger: logger)
    }

    // Settled tasks of this process's workers wake its callback deliverer.
    let settled = WakeSignal()
    var services: [any Service] = [
        TaskWorker(
            store: store, engine: engine, configuration: configuration.workerConfiguration, signal: signal, settled: settled, logger: logger),
        TaskSweeper(store: store, timeout: configuration.taskTimeout, maxAttempts: configuration.maxAttempts, logger: logger),
        RetentionSweeper(
            store: store, artifactDirectory: configuration.artifactDirectory, resultRetention: configuration.resultRetention,
            uploadRetention: configuration.uploadRetention, interval: configuration.retentionSweepInterval, logger: logger),
    ]
    // Result links in callbacks point at this process: a worker-only process delivers only when they can point at the API.
    if configuration.servesAPI || configuration.publicURL != nil {
        services.append(CallbackDeliverer(store: store, links: links, configuration: configuration.callbacks, wake: settled, logger: logger))
    }
    // Tasks queued by other processes wake this one's workers at once (PostgreSQL); polling covers the rest.
    if configuration.workers > 0 { services.append(QueueWakeRelay(store: store, signal: signal, logger: logger)) }
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "kling-server"),
        services: services,
        onServerRunning: { channel in
            if let port = channel.localAddress?.port { links.useLocalPortIfUnset(port) }
            logger.info(
                "kling-server listening",
                metadata: [
                    "address": "\(channel.localAddress.map { "\($0)" } ?? "?")", "engine": "\(engine.name)",
                    "role": "\(configuration.servesAPI ? (configuration.workers > 0 ? "api+worker" : "api") : "worker")",
                ])
        },
        logger: logger
    )
}

/// The routes of every dialect, uploads, result files, the playground and the admin API.
private func registerAPI(
    on router: Router<KlingRequestContext>, configuration: ServerConfiguration, store: any TaskStore, tasks: TaskService,
    links: ResultLinks, fetcher: any InputFetching, upstreamCallbacks: UpstreamCallbacks?, logger: Logger
) {
    let results = configuration.artifactDirectory.appendingPathComponent("results", isDirectory: true)
    let uploads = configuration.artifactDirectory.appendingPathComponent("uploads", isDirectory: true)
    let limiter = RateLimiter()
    // Only finished results and uploads are served (never scratch files or the database), and only through signed,
    // unexpired links.
    router.add(middleware: SignedFileMiddleware(links: links))
    router.add(
        middleware: FileMiddleware(
            results.path, urlBasePath: "/files/results", cacheControl: .init([(MediaType(type: .video), [.maxAge(3600)])]),
            logger: logger))
    router.add(middleware: FileMiddleware(uploads.path, urlBasePath: "/files/uploads", logger: logger))
    OpenAPIDocument.register(on: router)
    PlaygroundRoutes(links: links, logger: logger).register(on: router)
    let allowPrivate = configuration.callbacks.allowPrivateAddresses
    let creates = CreateFlow(tasks: tasks, limiter: limiter, allowPrivateCallbacks: allowPrivate)
    MarketRoutes(tasks: tasks, links: links, limiter: limiter, creates: creates, eventKeepAlive: configuration.eventKeepAlive).register(on: router)
    CRUNRoutes(tasks: tasks, links: links, limiter: limiter, creates: creates).register(on: router)
    let uploadStore = UploadStore(
        root: uploads, scratch: configuration.artifactDirectory.appendingPathComponent("tmp", isDirectory: true), links: links,
        retention: configuration.uploadRetention)
    UploadRoutes(tasks: tasks, uploads: uploadStore, links: links, limiter: limiter, fetcher: fetcher).register(on: router)
    KlingOfficialRoutes(tasks: tasks, links: links, limiter: limiter, creates: creates, uploads: uploadStore).register(on: router)
    OpenAIRoutes(
        tasks: tasks, links: links, limiter: limiter, creates: creates, uploads: uploadStore, artifactDirectory: configuration.artifactDirectory
    ).register(on: router)
    if let upstreamCallbacks { UpstreamCallbackRoutes(callbacks: upstreamCallbacks).register(on: router) }
    if let token = configuration.adminToken {
        AdminRoutes(
            accounts: AccountService(store: store), token: token, defaultLimits: configuration.limits,
            defaultCredits: configuration.defaultCredits
        ).register(on: router)
    }
}
