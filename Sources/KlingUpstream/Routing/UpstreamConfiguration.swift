import AsyncHTTPClient
import Foundation
import KlingCore
import Logging

/// The engines a server runs and the upstream providers' settings (the README's "Upstream engines" section).
public struct UpstreamConfiguration: Sendable {
    /// Engines in order of preference for tasks no routing rule matches (`KLING_ENGINES`, default `preview`).
    public var engines: [String] = ["preview"]
    /// Routing rules by model, mode and features (`KLING_ROUTES`, default none).
    public var routes: [RoutingTable.Rule] = []
    /// Kling's official API (`KLING_OFFICIAL_URL`, default `https://api.klingai.com`).
    public var officialURL = "https://api.klingai.com"
    /// `KLING_OFFICIAL_ACCESS_KEY`.
    public var officialAccessKey: Secret?
    /// `KLING_OFFICIAL_SECRET_KEY`.
    public var officialSecretKey: Secret?
    /// The Market reseller (`KLING_MARKET_URL`, default `https://api.kie.ai`).
    public var marketURL = "https://api.kie.ai"
    /// `KLING_MARKET_KEY`.
    public var marketKey: Secret?
    /// The CRUN reseller (`KLING_CRUN_URL`; no default).
    public var crunURL: String?
    /// `KLING_CRUN_KEY`.
    public var crunKey: Secret?
    /// The `/v1/videos` servers of the `openai-videos` engine, each without `/v1` (`KLING_OPENAI_VIDEOS_URL`, comma-separated).
    public var openAIVideosURLs: [String] = []
    /// `KLING_OPENAI_VIDEOS_KEY`: sent as `Authorization: Bearer` when set.
    public var openAIVideosKey: Secret?
    /// `KLING_OPENAI_VIDEOS_MODEL`: the `model` field sent (none when unset).
    public var openAIVideosModel: String?
    /// `KLING_OPENAI_VIDEOS_PROFILE` (default `openai`): see ``OpenAIVideosProfile/all``.
    public var openAIVideosProfile = "openai"
    /// The ComfyUI instances of the `comfyui` engine, typically one per GPU (`KLING_COMFYUI_URLS`, comma-separated).
    public var comfyUIURLs: [String] = []
    /// The folder of workflow templates (`KLING_COMFYUI_WORKFLOWS`), read and checked at start.
    public var comfyUIWorkflows: URL?
    /// Calls per second allowed to each provider (`KLING_UPSTREAM_QUERIES_PER_SECOND`, default 5).
    public var callsPerSecond: Double = 5
    /// Tasks one process follows at once (`KLING_UPSTREAM_OPEN_TASKS`, default 200); local renders stay at `--workers`.
    public var openTasks = 200
    /// Time for one call to a provider. Default 30 s.
    public var requestTimeout: Duration = .seconds(30)
    /// Following: the ceiling (`KLING_UPSTREAM_TIMEOUT_SECONDS`, default 1800), polling backoff, download limits.
    public var following = UpstreamEngine.Configuration()

    public init() {}

    /// The routing table these settings describe.
    public var table: RoutingTable { RoutingTable(rules: routes, defaultEngines: engines) }

    /// Whether any upstream engine is configured (otherwise the server runs its local engine alone, as before).
    public var usesUpstream: Bool { table.allEngines.contains { $0 != EngineKey.preview.rawValue } }

    /// Checks that every configured engine has its settings; the message names the missing variables, never values.
    public func validate() throws(RoutingError) {
        for name in table.allEngines {
            switch EngineKey(name) {
            case .official?:
                if officialAccessKey == nil || officialSecretKey == nil {
                    throw RoutingError("the official engine needs KLING_OFFICIAL_ACCESS_KEY and KLING_OFFICIAL_SECRET_KEY")
                }
            case .market?:
                if marketKey == nil { throw RoutingError("the market engine needs KLING_MARKET_KEY") }
            case .crun?:
                if crunURL == nil || crunKey == nil { throw RoutingError("the crun engine needs KLING_CRUN_URL and KLING_CRUN_KEY") }
            case .comfyUI?:
                if comfyUIURLs.isEmpty || comfyUIWorkflows == nil {
                    throw RoutingError("the comfyui engine needs KLING_COMFYUI_URLS and KLING_COMFYUI_WORKFLOWS")
                }
            case .openAIVideos?:
                if openAIVideosURLs.isEmpty { throw RoutingError("the openai-videos engine needs KLING_OPENAI_VIDEOS_URL") }
                if OpenAIVideosProfile.all[openAIVideosProfile] == nil {
                    throw RoutingError(
                        "KLING_OPENAI_VIDEOS_PROFILE: unknown profile \"\(openAIVideosProfile)\" (use \(OpenAIVideosProfile.names.joined(separator: ", ")))")
                }
            case .preview?, nil:
                break
            }
        }
    }

    /// The engine a server runs: `local` alone when no upstream is configured, else a router over every configured
    /// engine, each upstream with its own rate limiter. Downloads go through `fetcher` (the safe fetcher); inputs an
    /// engine sends on (the openai-videos first frame) are read through `inputs` (this server's own files from disk).
    public func makeEngine(
        local: any VideoEngine, localConcurrency: Int, store: any QueueStore & TaskRecordStore, fetcher: any InputFetching,
        inputs: (any InputFetching)? = nil, callbacks: UpstreamCallbacks?, logger: Logger
    ) async throws -> any VideoEngine {
        guard usesUpstream else { return local }
        try validate()
        var engines: [String: any VideoEngine] = [:]
        for name in table.allEngines {
            let provider: any UpstreamProvider
            switch EngineKey(name) {
            case .official?:
                guard let access = officialAccessKey, let secret = officialSecretKey else { continue }
                provider = await KlingOfficialProvider(
                    baseURL: officialURL, accessKey: access.value, secretKey: secret.value, timeout: requestTimeout)
            case .market?:
                guard let key = marketKey else { continue }
                provider = MarketProvider(baseURL: marketURL, key: key.value, timeout: requestTimeout)
            case .crun?:
                guard let url = crunURL, let key = crunKey else { continue }
                provider = CRUNProvider(baseURL: url, key: key.value, timeout: requestTimeout)
            case .openAIVideos?:
                guard let profile = OpenAIVideosProfile.all[openAIVideosProfile] else { continue }
                provider = OpenAIVideosProvider(
                    baseURLs: openAIVideosURLs, key: openAIVideosKey?.value, model: openAIVideosModel, profile: profile, inputs: inputs ?? fetcher,
                    timeout: requestTimeout)
            case .comfyUI?:
                guard let folder = comfyUIWorkflows else { continue }
                let templates: [ComfyUIWorkflowTemplate]
                do throws(ComfyUIWorkflowTemplate.Invalid) {
                    templates = try ComfyUIWorkflowTemplate.loadAll(from: folder)
                } catch {
                    throw RoutingError("KLING_COMFYUI_WORKFLOWS: \(error)")
                }
                let comfy = ComfyUIProvider(instanceURLs: comfyUIURLs, templates: templates, inputs: inputs ?? fetcher, timeout: requestTimeout)
                try await comfy.checkNodeClasses(logger: logger)
                provider = comfy
            case .preview?, nil:
                engines[name] = local
                continue
            }
            engines[name] = UpstreamEngine(
                provider: provider, limiter: ProviderRateLimiter(perSecond: callsPerSecond), store: store, fetcher: fetcher,
                callbacks: callbacks, configuration: following, logger: logger)
        }
        return EngineRouter(engines: engines, table: table, store: store, localConcurrency: localConcurrency, logger: logger)
    }
}

/// A credential: its text is never printed (`description` is redacted), so it cannot leak through logs or errors.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The credential itself; read only where it is sent.
    public let value: String

    public init(_ value: String) { self.value = value }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}
