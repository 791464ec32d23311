import Foundation
import KlingAPI
import Testing

@testable import KlingUpstream

/// Each provider's create body for canonical requests, compared (as parsed JSON) with golden files written from the
/// contracts (kling-official.md, seed 004, seed 000).
@Suite struct TranslationTests {
    static let callback = "https://kling.example/api/v1/upstream/callbacks/task_golden?token=T"

    static var lighthouse: GenerationRequest {
        var request = GenerationRequest(
            prompt: "A lighthouse at dusk, waves crashing", negativePrompt: "blur, text", duration: 10, aspectRatio: .portrait,
            mode: .fourK, audio: true)
        request.cameraMotion = .pushIn
        return request
    }

    static var beach: GenerationRequest {
        GenerationRequest(
            multiShot: true, shotType: .customize,
            shots: [
                .init(prompt: "@dog runs along the beach", duration: 2), .init(prompt: "@dog meets @cat", duration: 3),
                .init(prompt: "they walk into the sunset", duration: 5),
            ],
            duration: 10, mode: .pro, imageURLs: ["https://cdn.example/first.png"],
            elements: [
                .init(name: "dog", description: "a golden retriever", imageURLs: ["https://cdn.example/dog1.png", "https://cdn.example/dog2.png"]),
                .init(name: "cat", description: "a black cat", videoURLs: ["https://cdn.example/cat.mp4"]),
            ])
    }

    static var flower: GenerationRequest {
        GenerationRequest(
            prompt: "the flower opens", duration: 5, mode: .std, audio: false,
            imageURLs: ["https://cdn.example/bud.png", "https://cdn.example/bloom.png"])
    }

    static var baker: GenerationRequest {
        GenerationRequest(
            prompt: "A day in the life of a baker, from dawn to the first customer", multiShot: true, shotType: .intelligence,
            duration: 15, mode: .pro, imageURLs: ["https://cdn.example/bakery.png"],
            elements: [
                .init(name: "baker", description: "a tall baker", imageURLs: ["https://cdn.example/baker1.png", "https://cdn.example/baker2.png"])
            ])
    }

    static func golden(_ name: String) throws -> JSONValue {
        let url = try #require(Bundle.module.resourceURL).appendingPathComponent("Golden/\(name).json")
        return try #require(JSONValue.parse(try Data(contentsOf: url)))
    }

    @Test func officialBodiesMatchTheGoldenFiles() throws {
        #expect(KlingOfficialProvider.body(for: Self.lighthouse, taskID: "task_golden", callbackURL: Self.callback) == (try Self.golden("official-text2video")))
        #expect(
            KlingOfficialProvider.body(for: Self.beach, taskID: "task_golden", callbackURL: Self.callback)
                == (try Self.golden("official-image2video-multishot")))
        #expect(
            KlingOfficialProvider.body(for: Self.flower, taskID: "task_golden", callbackURL: Self.callback)
                == (try Self.golden("official-image2video-first-last")))
        #expect(KlingOfficialProvider.kind(of: Self.lighthouse) == "text2video")
        #expect(KlingOfficialProvider.kind(of: Self.beach) == "image2video")
    }

    @Test func marketBodiesMatchTheGoldenFiles() throws {
        #expect(MarketProvider.body(for: Self.beach, callbackURL: Self.callback) == (try Self.golden("market-image2video-multishot")))
        #expect(MarketProvider.body(for: Self.flower, callbackURL: Self.callback) == (try Self.golden("market-image2video-first-last")))
    }

    @Test func crunBodiesMatchTheGoldenFiles() throws {
        #expect(CRUNProvider.body(for: Self.lighthouse, callbackURL: Self.callback) == (try Self.golden("crun-text2video-4k")))
        #expect(CRUNProvider.body(for: Self.baker, callbackURL: Self.callback) == (try Self.golden("crun-intelligence")))
    }

    @Test func providersNameWhatTheirAPIsCannotDo() {
        let market = MarketProvider(baseURL: "https://market.example", key: "k")
        let crun = CRUNProvider(baseURL: "https://crun.example", key: "k")
        #expect(market.unsupportedReason(Self.lighthouse) == "the Market API has no 4k mode")
        #expect(market.unsupportedReason(Self.baker) == "the Market API has no intelligence multi-shot")
        #expect(market.unsupportedReason(Self.beach) == nil)
        #expect(crun.unsupportedReason(Self.beach) == "the CRUN API takes no video elements")
        #expect(crun.unsupportedReason(Self.baker) == nil)
    }

    @Test func routingRulesPickListsByModelModeAndFeatures() throws {
        let rules = try RoutingTable.parseRules("mode=4k:official,crun; multi-shot+elements:official,market; model=kling-3.0:market; *:crun")
        let table = RoutingTable(rules: rules, defaultEngines: ["official", "preview"])
        #expect(table.engines(model: "kling-3.0/video", request: Self.lighthouse) == ["official", "crun"])
        #expect(table.engines(model: "kling-3.0/video", request: Self.beach) == ["official", "market"])
        #expect(table.engines(model: "kling-3.0", request: Self.flower) == ["market"])
        #expect(table.engines(model: "kling/v3", request: Self.flower) == ["crun"])
        #expect(RoutingTable(rules: [], defaultEngines: ["official", "preview"]).engines(model: "x", request: Self.flower) == ["official", "preview"])
        #expect(try RoutingTable.parseEngines("kling-official, Preview", setting: "KLING_ENGINES") == ["official", "preview"])
        #expect(throws: RoutingError.self) { try RoutingTable.parseEngines("official,sora", setting: "KLING_ENGINES") }
        #expect(throws: RoutingError.self) { try RoutingTable.parseRules("fast:official") }
    }

    @Test func credentialsAreRedactedWhenPrinted() {
        var configuration = UpstreamConfiguration()
        configuration.officialAccessKey = Secret("ak-visible-nowhere")
        configuration.officialSecretKey = Secret("sk-visible-nowhere")
        configuration.marketKey = Secret("mk-visible-nowhere")
        let printed = "\(configuration) \(String(reflecting: configuration))"
        #expect(!printed.contains("visible-nowhere"))
        #expect(throws: RoutingError.self) {
            var missing = UpstreamConfiguration()
            missing.engines = ["crun"]
            try missing.validate()
        }
    }
}
