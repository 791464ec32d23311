import Foundation

extension KlingClient {
    /// Everything a ``KlingClient`` needs to reach one provider: where, as whom, in which dialect, and how patiently.
    public struct Configuration: Sendable {
        /// The provider's base URL, e.g. `http://localhost:8080` or `https://api.example.com` (no trailing path needed).
        public var baseURL: String
        /// How requests authenticate.
        public var credentials: Credentials
        /// Which wire dialect the provider speaks. Default ``Dialect/market``.
        public var dialect: Dialect
        /// Connect, request and download time limits.
        public var timeouts: Timeouts
        /// How ``KlingClient/wait(for:)`` polls.
        public var polling: PollingPolicy
        /// How many times a request that is safe to repeat is sent when the network or the provider fails
        /// transiently (a create is repeated only when it carries an idempotency key). Default 3.
        public var maxAttempts: Int
        /// Sent as `User-Agent`.
        public var userAgent: String

        /// A configuration with documented defaults: Market dialect, 10 s to connect, 60 s per request, 30 minutes per
        /// download, polling every 2 s at first and giving up after 30 minutes.
        public init(
            baseURL: String,
            credentials: Credentials,
            dialect: Dialect = .market,
            timeouts: Timeouts = Timeouts(),
            polling: PollingPolicy = PollingPolicy(),
            maxAttempts: Int = 3,
            userAgent: String = "KlingKit/1.0"
        ) {
            self.baseURL = baseURL
            self.credentials = credentials
            self.dialect = dialect
            self.timeouts = timeouts
            self.polling = polling
            self.maxAttempts = max(1, maxAttempts)
            self.userAgent = userAgent
        }
    }

    /// The wire dialects a client can speak.
    public enum Dialect: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// Seed 004 (kie.ai style): `POST /api/v1/jobs/createTask`, `Authorization: Bearer KEY`.
        case market
        /// Seed 000: `POST /api/v1/client/job/CreateTask`, `x-api-key: KEY`.
        case crun
        /// Kling's official v1 API: `POST /v1/videos/text2video|image2video`, a Bearer key or a JWT.
        case klingOfficial = "kling"

        /// The dialect's name as flags and settings spell it (`market`, `crun`, `kling`).
        public var description: String { rawValue }

        /// The credentials header this dialect expects for a plain API key.
        public func credentials(apiKey: String) -> Credentials {
            self == .crun ? .apiKeyHeader(apiKey) : .bearer(apiKey)
        }
    }

    /// How requests prove who sends them.
    public struct Credentials: Sendable, Hashable {
        enum Storage: Sendable, Hashable {
            case bearer(String)
            case apiKeyHeader(String)
            case accessKey(access: String, secret: String, lifetime: Duration)
        }
        let storage: Storage

        /// `Authorization: Bearer KEY` (Market, Kling official with an API key).
        public static func bearer(_ key: String) -> Credentials { Credentials(storage: .bearer(key)) }

        /// `x-api-key: KEY` (CRUN).
        public static func apiKeyHeader(_ key: String) -> Credentials { Credentials(storage: .apiKeyHeader(key)) }

        /// A Kling access key and secret key: every request carries a fresh HS256 JWT (`iss` = access key, `exp` =
        /// now + `lifetime`, `nbf` = now - 5 s) signed with the secret key, as Kling's official API expects.
        public static func accessKey(_ accessKey: String, secretKey: String, tokenLifetime: Duration = .seconds(1800)) -> Credentials {
            Credentials(storage: .accessKey(access: accessKey, secret: secretKey, lifetime: tokenLifetime))
        }

        /// Whether these credentials are a plain API key (which KlingKit's upload, cancel, quote and credit endpoints
        /// need), rather than Kling access keys.
        public var isAPIKey: Bool { apiKey != nil }

        /// The plain API key, when these credentials are one (KlingKit's extension endpoints take it as a Bearer key).
        var apiKey: String? {
            switch storage {
            case .bearer(let key), .apiKeyHeader(let key): key
            case .accessKey: nil
            }
        }
    }

    /// Time limits. Defaults: 10 s to connect, 60 s per API request, 30 minutes per download.
    public struct Timeouts: Sendable, Hashable {
        /// Time to open a connection.
        public var connect: Duration
        /// Time for one API request, answer included.
        public var request: Duration
        /// Time for one download, all resumed attempts included.
        public var download: Duration

        /// Time limits with the documented defaults.
        public init(connect: Duration = .seconds(10), request: Duration = .seconds(60), download: Duration = .seconds(1800)) {
            self.connect = connect
            self.request = request
            self.download = download
        }
    }

    /// How ``KlingClient/wait(for:)`` spaces its queries: every `initialInterval` for the first `initialPhase`, then
    /// every `laterInterval` until `slowPhaseAfter`, then every `slowInterval`; it stops after `ceiling`.
    ///
    /// The defaults follow the providers' guidance: 2 s for the first 30 s, 5 s until 2 minutes, 15 s after that,
    /// and a hard ceiling of 30 minutes (the task id is in the timeout error, so the task can be picked up again).
    public struct PollingPolicy: Sendable, Hashable {
        /// The interval at first.
        public var initialInterval: Duration
        /// How long the first interval is used.
        public var initialPhase: Duration
        /// The interval after the first phase.
        public var laterInterval: Duration
        /// When the slow interval starts.
        public var slowPhaseAfter: Duration
        /// The interval of long waits.
        public var slowInterval: Duration
        /// When waiting stops with a timeout error.
        public var ceiling: Duration

        /// A policy with the documented defaults.
        public init(
            initialInterval: Duration = .seconds(2), initialPhase: Duration = .seconds(30), laterInterval: Duration = .seconds(5),
            slowPhaseAfter: Duration = .seconds(120), slowInterval: Duration = .seconds(15), ceiling: Duration = .seconds(1800)
        ) {
            self.initialInterval = initialInterval
            self.initialPhase = initialPhase
            self.laterInterval = laterInterval
            self.slowPhaseAfter = slowPhaseAfter
            self.slowInterval = slowInterval
            self.ceiling = ceiling
        }

        /// The pause before the next query, `elapsed` after waiting started.
        public func interval(after elapsed: Duration) -> Duration {
            if elapsed < initialPhase { return initialInterval }
            if elapsed < slowPhaseAfter { return laterInterval }
            return slowInterval
        }
    }
}
