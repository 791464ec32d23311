import AsyncHTTPClient
import Foundation
import KlingCore
import KlingPreview
import Testing

/// The real fetcher against a loopback HTTP server.
@Suite("HTTP input fetcher", .timeLimit(.minutes(2)))
struct HTTPInputFetcherTests {
    private func scratchFile() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("kling-fetch-\(UUID().uuidString)")
    }

    @Test func downloadsTheFile() async throws {
        let file = scratchFile()
        defer { try? FileManager.default.removeItem(at: file) }
        try await InputServer.with { inputs in
            try await HTTPInputFetcher().fetch(inputs.url("start.png"), field: "image_urls[0]", maxBytes: 10_000_000, to: file)
            #expect(try Data(contentsOf: file) == Data(contentsOf: inputs.file("start.png")))
        }
    }

    @Test func refusesAContentLengthOverTheLimit() async throws {
        let file = scratchFile()
        defer { try? FileManager.default.removeItem(at: file) }
        try await InputServer.with { inputs in
            let error = await #expect(throws: EngineError.self) {
                try await HTTPInputFetcher().fetch(inputs.url("start.png"), field: "image_urls[0]", maxBytes: 100, to: file)
            }
            #expect(error?.code == 422)
            #expect(error?.message.contains("limit") == true)
        }
    }

    @Test func abortsAStreamedBodyAsSoonAsItPassesTheLimit() async throws {
        let file = scratchFile()
        defer { try? FileManager.default.removeItem(at: file) }
        try await InputServer.with { inputs in
            let error = await #expect(throws: EngineError.self) {
                try await HTTPInputFetcher().fetch(inputs.url("stream?bytes=5000000"), field: "image_urls[0]", maxBytes: 100_000, to: file)
            }
            #expect(error?.code == 422)
            #expect(error?.message.contains("over the limit of 100000 bytes") == true, "\(error?.message ?? "")")
            #expect(!FileManager.default.fileExists(atPath: file.path), "the partial download is removed")
            // A body within the limit streams through.
            try await HTTPInputFetcher().fetch(inputs.url("stream?bytes=50000"), field: "image_urls[0]", maxBytes: 100_000, to: file)
            #expect(try Data(contentsOf: file).count == 50_000)
        }
    }

    @Test func reportsHTTPErrorStatuses() async throws {
        let file = scratchFile()
        defer { try? FileManager.default.removeItem(at: file) }
        try await InputServer.with { inputs in
            let error = await #expect(throws: EngineError.self) {
                try await HTTPInputFetcher().fetch(inputs.url("missing.png"), field: "image_urls[1]", maxBytes: 1000, to: file)
            }
            #expect(error?.code == 422)
            #expect(error?.message == "image_urls[1]: could not fetch \(inputs.url("missing.png")): HTTP 404")
        }
    }

    @Test(arguments: ["ftp://example.com/a.png", "file:///etc/passwd", "not a url"])
    func refusesSchemesOtherThanHTTP(_ url: String) async throws {
        let error = await #expect(throws: EngineError.self) {
            try await HTTPInputFetcher().fetch(url, field: "image_urls[0]", maxBytes: 1000, to: scratchFile())
        }
        #expect(error?.code == 422)
    }

    @Test func reportsConnectionErrors() async throws {
        // Port 1 on loopback: nothing listens there. A short connect timeout keeps the test quick.
        let client = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(timeout: .init(connect: .seconds(1))))
        let fetcher = HTTPInputFetcher(client: client)
        let error = await #expect(throws: EngineError.self) {
            try await fetcher.fetch("http://127.0.0.1:1/a.png", field: "image_urls[0]", maxBytes: 1000, to: scratchFile())
        }
        try await client.shutdown()
        #expect(error?.code == 422)
        #expect(error?.message.hasPrefix("image_urls[0]: could not fetch http://127.0.0.1:1/a.png:") == true, "\(error?.message ?? "")")
    }
}
