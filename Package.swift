// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6)
]

let package = Package(
    name: "KlingKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "KlingAPI", targets: ["KlingAPI"]),
        .library(name: "KlingKit", targets: ["KlingKit"]),
        .executable(name: "kling", targets: ["kling"]),
        .executable(name: "kling-server", targets: ["kling-server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
    ],
    targets: [
        // Wire models of every dialect and the canonical request with its validation. Foundation only.
        .target(name: "KlingAPI", swiftSettings: swiftSettings),
        // The JWTs Kling's official API takes, minted once for the client library and the upstream engine.
        .target(name: "KlingJWT", dependencies: [.product(name: "JWTKit", package: "jwt-kit")], swiftSettings: swiftSettings),
        // The Swift client library: KlingClient over AsyncHTTPClient, sharing KlingAPI's validation. Never the server.
        .target(
            name: "KlingKit",
            dependencies: [
                "KlingAPI", "KlingJWT",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `kling` command-line tool over KlingKit.
        .executableTarget(
            name: "kling",
            dependencies: [
                "KlingKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        // Tasks, accounts, keys, the store protocol, the engine protocol and the worker queue.
        .target(
            name: "KlingCore",
            dependencies: [
                "KlingAPI",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The embedded SQLite store (GRDB).
        .target(
            name: "KlingSQLite",
            dependencies: [
                "KlingCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The PostgreSQL store (PostgresNIO), for several API and worker processes sharing one database.
        .target(
            name: "KlingPostgres",
            dependencies: [
                "KlingCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // FFmpeg's libraries from the system (Debian: libavformat-dev, libavfilter-dev), for joining rendered pieces,
        // rendering the audio track and probing results in process.
        .systemLibrary(name: "CFFmpeg", pkgConfig: "libavformat", providers: [.apt(["libavformat-dev", "libavfilter-dev"])]),
        // The built-in preview engine: ffmpeg + espeak-ng, and fetching of input files.
        .target(
            name: "KlingPreview",
            dependencies: [
                "KlingCore", "CFFmpeg",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Upstream engines: Kling's official API and the Market and CRUN resellers, routing and failover, following.
        .target(
            name: "KlingUpstream",
            dependencies: [
                "KlingAPI", "KlingCore", "KlingJWT", "KlingPreview", "CFFmpeg",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Loopback fakes of the upstream providers (Hummingbird servers written from the contracts), for tests and benchmarks.
        .target(
            name: "KlingUpstreamFakes",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/KlingUpstreamFakes",
            swiftSettings: swiftSettings
        ),
        // Test helpers shared by test targets: a throwaway PostgreSQL database per test, the test server configuration.
        .target(
            name: "KlingTestSupport",
            dependencies: [
                "KlingServer", .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/KlingTestSupport",
            swiftSettings: swiftSettings
        ),
        // The HTTP server: dialect edges, middleware, file serving, services.
        .target(
            name: "KlingServer",
            dependencies: [
                "KlingAPI", "KlingCore", "KlingSQLite", "KlingPreview", "KlingUpstream",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The web playground served at `/` (plain HTML, CSS and JavaScript, no build step) and the OpenAPI document.
            resources: [.copy("Playground/Web"), .copy("Resources/openapi.json")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "kling-server",
            dependencies: [
                "KlingServer", "KlingUpstream", "KlingSQLite", "KlingPostgres",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // Benchmarks: a bare Hummingbird baseline and the render timer (run by Benchmarks/run.sh).
        .executableTarget(
            name: "HelloBench",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "Benchmarks/HelloBench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "RenderBench",
            dependencies: ["KlingPreview", "KlingCore", "KlingAPI"],
            path: "Benchmarks/RenderBench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "HotPathBench",
            dependencies: ["KlingSQLite", "KlingCore", "KlingAPI"],
            path: "Benchmarks/HotPathBench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "QueueBench",
            dependencies: [
                "KlingSQLite", "KlingPostgres", "KlingCore", "KlingAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Benchmarks/QueueBench",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KlingKitTests",
            dependencies: [
                "KlingKit", "KlingServer", "KlingSQLite", "KlingPreview", "KlingCore", "KlingAPI", "KlingTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "UpstreamBench",
            dependencies: [
                "KlingUpstream", "KlingUpstreamFakes", "KlingSQLite", "KlingCore", "KlingAPI", "KlingPreview",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/UpstreamBench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "EngineOverheadBench",
            dependencies: [
                "KlingServer", "KlingUpstream", "KlingUpstreamFakes", "KlingSQLite", "KlingCore", "KlingPreview", "KlingTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Benchmarks/EngineOverheadBench",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "KlingAPITests", dependencies: ["KlingAPI"], swiftSettings: swiftSettings),
        .testTarget(
            name: "KlingStoreTests",
            dependencies: [
                "KlingSQLite", "KlingPostgres", "KlingCore", "KlingAPI", "KlingTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KlingPreviewTests",
            dependencies: [
                "KlingPreview", "KlingCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KlingUpstreamTests",
            dependencies: [
                "KlingUpstream", "KlingUpstreamFakes", "KlingSQLite", "KlingCore", "KlingAPI", "KlingPreview", "KlingJWT",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            resources: [.copy("Golden")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KlingServerTests",
            dependencies: [
                "KlingServer", "KlingUpstream", "KlingUpstreamFakes", "KlingSQLite", "KlingPostgres", "KlingPreview", "KlingCore",
                "KlingAPI", "KlingTestSupport", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
