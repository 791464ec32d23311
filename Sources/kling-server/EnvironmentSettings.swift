import ArgumentParser
import Foundation
import KlingCore
import KlingServer
import KlingUpstream

/// Reads the billing, limit and admin settings from `KLING_*` environment variables (the README lists them).
enum EnvironmentSettings {
    static func apply(_ environment: [String: String], to configuration: inout ServerConfiguration) throws {
        func integer(_ name: String) throws -> Int? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Int(text), value >= 0 else { throw ValidationError("\(name) must be a whole number of 0 or more, not \(text)") }
            return value
        }
        if let value = try integer("KLING_PRICE_STD") { configuration.prices.stdPerSecond = Int64(value) }
        if let value = try integer("KLING_PRICE_PRO") { configuration.prices.proPerSecond = Int64(value) }
        if let value = try integer("KLING_PRICE_4K") { configuration.prices.fourKPerSecond = Int64(value) }
        if let text = environment["KLING_PRICE_AUDIO_FACTOR"], !text.isEmpty {
            guard let factor = Double(text), factor >= 1, factor <= 10 else {
                throw ValidationError("KLING_PRICE_AUDIO_FACTOR must be a number from 1 to 10, not \(text)")
            }
            configuration.prices.audioFactor = factor
        }
        if let value = try integer("KLING_RATE_CREATES") { configuration.limits.createsPerWindow = value }
        if let value = try integer("KLING_RATE_CREATE_WINDOW") { configuration.limits.createWindowSeconds = max(1, value) }
        if let value = try integer("KLING_RATE_QUERIES") { configuration.limits.queriesPerSecond = value }
        if let value = try integer("KLING_MAX_ACTIVE_TASKS") { configuration.limits.maxActiveTasks = value }
        if let value = try integer("KLING_DEFAULT_CREDITS") { configuration.defaultCredits = Int64(value) }
        if let value = try integer("KLING_TASK_TIMEOUT_SECONDS") { configuration.taskTimeout = .seconds(max(1, value)) }
        if let value = try integer("KLING_CALLBACK_TIMEOUT_SECONDS") { configuration.callbacks.timeout = .seconds(max(1, value)) }
        if let text = environment["KLING_CALLBACK_RETRY_DELAYS"], !text.isEmpty {
            let delays = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !delays.isEmpty, delays.allSatisfy({ ($0 ?? -1) >= 0 }) else {
                throw ValidationError("KLING_CALLBACK_RETRY_DELAYS must be comma-separated seconds, such as 5,300,1800; not \(text)")
            }
            configuration.callbacks.retryDelays = delays.map { .seconds($0 ?? 0) }
        }
        if let value = try integer("KLING_RESULT_LINK_DAYS") { configuration.resultLinkLifetime = .seconds(max(1, value) * 86_400) }
        if let value = try integer("KLING_RESULT_RETENTION_DAYS") { configuration.resultRetention = .seconds(max(1, value) * 86_400) }
        if let value = try integer("KLING_UPLOAD_RETENTION_DAYS") { configuration.uploadRetention = .seconds(max(1, value) * 86_400) }
        if let token = environment["KLING_ADMIN_TOKEN"], !token.isEmpty {
            guard token.utf8.count >= 16 else { throw ValidationError("KLING_ADMIN_TOKEN must be at least 16 characters") }
            configuration.adminToken = token
        }
        try applyUpstream(environment, to: &configuration.upstream)
    }

    /// Upstream engines and providers (README "Upstream engines"). Errors name the variable, never a credential.
    static func applyUpstream(_ environment: [String: String], to upstream: inout UpstreamConfiguration) throws {
        func text(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        do {
            if let list = text("KLING_ENGINES") { upstream.engines = try RoutingTable.parseEngines(list, setting: "KLING_ENGINES") }
            if let routes = text("KLING_ROUTES") { upstream.routes = try RoutingTable.parseRules(routes) }
        } catch {
            throw ValidationError(error.description)
        }
        if let url = text("KLING_OFFICIAL_URL") { upstream.officialURL = url }
        upstream.officialAccessKey = text("KLING_OFFICIAL_ACCESS_KEY").map(Secret.init)
        upstream.officialSecretKey = text("KLING_OFFICIAL_SECRET_KEY").map(Secret.init)
        if let url = text("KLING_MARKET_URL") { upstream.marketURL = url }
        upstream.marketKey = text("KLING_MARKET_KEY").map(Secret.init)
        upstream.crunURL = text("KLING_CRUN_URL")
        upstream.crunKey = text("KLING_CRUN_KEY").map(Secret.init)
        for name in ["KLING_OFFICIAL_URL", "KLING_MARKET_URL", "KLING_CRUN_URL"] {
            if let url = text(name), !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                throw ValidationError("\(name) must be an http or https URL")
            }
        }
        if let list = text("KLING_OPENAI_VIDEOS_URL") {
            upstream.openAIVideosURLs = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                .map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            for url in upstream.openAIVideosURLs where !(url.hasPrefix("http://") || url.hasPrefix("https://")) || url.hasSuffix("/v1") {
                throw ValidationError("KLING_OPENAI_VIDEOS_URL: \(url) must be an http or https base URL, without /v1")
            }
        }
        if let list = text("KLING_COMFYUI_URLS") {
            upstream.comfyUIURLs = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                .map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            for url in upstream.comfyUIURLs where !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                throw ValidationError("KLING_COMFYUI_URLS: \(url) must be an http or https URL")
            }
        }
        upstream.comfyUIWorkflows = text("KLING_COMFYUI_WORKFLOWS").map { URL(fileURLWithPath: $0, isDirectory: true) }
        upstream.openAIVideosKey = text("KLING_OPENAI_VIDEOS_KEY").map(Secret.init)
        upstream.openAIVideosModel = text("KLING_OPENAI_VIDEOS_MODEL")
        if let profile = text("KLING_OPENAI_VIDEOS_PROFILE") { upstream.openAIVideosProfile = profile }
        if let seconds = text("KLING_UPSTREAM_TIMEOUT_SECONDS") {
            guard let value = Int(seconds), value > 0 else { throw ValidationError("KLING_UPSTREAM_TIMEOUT_SECONDS must be a whole number over 0") }
            upstream.following.ceiling = .seconds(value)
        }
        if let rate = text("KLING_UPSTREAM_QUERIES_PER_SECOND") {
            guard let value = Double(rate), value > 0 else { throw ValidationError("KLING_UPSTREAM_QUERIES_PER_SECOND must be a number over 0") }
            upstream.callsPerSecond = value
        }
        if let open = text("KLING_UPSTREAM_OPEN_TASKS") {
            guard let value = Int(open), value > 0 else { throw ValidationError("KLING_UPSTREAM_OPEN_TASKS must be a whole number over 0") }
            upstream.openTasks = value
        }
        do {
            try upstream.validate()
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// `KLING_DATABASE_URL`: a `postgres://` URL selects the PostgreSQL store; unset or empty keeps the SQLite file.
    static func databaseURL(_ environment: [String: String]) throws -> String? {
        guard let url = environment["KLING_DATABASE_URL"], !url.isEmpty else { return nil }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw ValidationError("KLING_DATABASE_URL must be a postgres:// URL (unset it to use the SQLite file in the data directory)")
        }
        return url
    }

    /// The configuration the admin commands see (defaults plus environment), for starting grants and limits.
    static func current() throws -> ServerConfiguration {
        var configuration = ServerConfiguration()
        try apply(ProcessInfo.processInfo.environment, to: &configuration)
        return configuration
    }
}
