import Foundation
import KlingCore
import Testing

@testable import KlingPreview

/// The real fetcher against a loopback HTTP server.
@Suite("HTTP input fetcher", .timeLimit(.minutes(2)))
struct HTTPInputFetcherTests {
    private func scratchFile() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("kling-fetch-\(UUID().uuidString)")
    }

    /// The address rule on, with 127.0.0.1 standing in for a public host (so redirects from it can be tested offline).
    private var ruleOnExceptLoopbackHost: HTTPInputFetcher {
        var configuration = HTTPInputFetcher.Configuration()
        configuration.exemptAddresses = [IPAddress("127.0.0.1")!]
        return HTTPInputFetcher(configuration: configuration)
    }

    private func fetchError(_ fetcher: HTTPInputFetcher, _ url: String, field: String = "image_urls[0]", maxBytes: Int = 10_000_000) async
        -> EngineError?
    {
        let file = scratchFile()
        defer { try? FileManager.default.removeItem(at: file) }
        let error = await #expect(throws: EngineError.self) {
            try await fetcher.fetch(url, field: field, maxBytes: maxBytes, to: file)
        }
        #expect(!FileManager.default.fileExists(atPath: file.path), "nothing is left behind after a refusal")
        return error
    }

    @Test func downloadsTheFile() async throws {
        let file = scratchFile()
        defer { try? FileManager.default.removeItem(at: file) }
        try await InputServer.with { inputs in
            try await HTTPInputFetcher.development.fetch(inputs.url("start.png"), field: "image_urls[0]", maxBytes: 10_000_000, to: file)
            #expect(try Data(contentsOf: file) == Data(contentsOf: inputs.file("start.png")))
        }
    }

    // MARK: - Address rule

    @Test func refusesALoopbackLiteralWithTheRuleOn() async throws {
        try await InputServer.with { inputs in
            let error = await fetchError(HTTPInputFetcher(), inputs.url("start.png"), field: "image_urls[1]")
            #expect(error?.code == 422)
            #expect(
                error?.message == "image_urls[1]: refused to fetch \(inputs.url("start.png")): 127.0.0.1 is a loopback address; "
                    + "inputs must be on public addresses", "\(error?.message ?? "")")
        }
    }

    @Test func refusesANameThatResolvesToLoopback() async throws {
        try await InputServer.with { inputs in
            let url = inputs.url("start.png", host: "localhost")
            let error = await fetchError(HTTPInputFetcher(), url, field: "elements[0].image_urls[0]")
            #expect(error?.code == 422)
            let message = error?.message ?? ""
            #expect(message.hasPrefix("elements[0].image_urls[0]: refused to fetch \(url): localhost resolves to "), "\(message)")
            #expect(message.contains("a loopback address"), "\(message)")
        }
    }

    @Test func theDevelopmentSwitchAllowsLoopbackNamesAndKeepsTheHostHeader() async throws {
        let file = scratchFile()
        defer { try? FileManager.default.removeItem(at: file) }
        try await InputServer.with { inputs in
            // The connection is pinned to the checked address, but the server still sees the name it was asked for.
            try await HTTPInputFetcher.development.fetch(inputs.url("host", host: "localhost"), field: "image_urls[0]", maxBytes: 1000, to: file)
            #expect(try String(contentsOf: file, encoding: .utf8) == "localhost:\(inputs.port)")
            try await HTTPInputFetcher.development.fetch(inputs.url("start.png"), field: "image_urls[0]", maxBytes: 10_000_000, to: file)
        }
    }

    @Test func connectsToTheAddressThatWasCheckedNotToASecondLookUp() async throws {
        let file = scratchFile()
        defer { try? FileManager.default.removeItem(at: file) }
        try await InputServer.with { inputs in
            // Only the fetcher's own (fake) name server knows this name; the system resolver does not. The download
            // works, so the connection used the checked answer and never asked DNS again (no rebinding window).
            var configuration = HTTPInputFetcher.Configuration()
            configuration.exemptAddresses = [IPAddress("127.0.0.1")!]
            configuration.fixedAnswers = ["images.kling-test.invalid": [IPAddress("127.0.0.1")!]]
            let url = inputs.url("host", host: "images.kling-test.invalid")
            try await HTTPInputFetcher(configuration: configuration).fetch(url, field: "image_urls[0]", maxBytes: 1000, to: file)
            #expect(try String(contentsOf: file, encoding: .utf8) == "images.kling-test.invalid:\(inputs.port)")
            // A name with a private address among its answers is refused, even when another answer is public.
            configuration.fixedAnswers = ["images.kling-test.invalid": [IPAddress("93.184.216.34")!, IPAddress("10.0.0.7")!]]
            let error = await fetchError(HTTPInputFetcher(configuration: configuration), url)
            #expect(error?.message.contains("images.kling-test.invalid resolves to 10.0.0.7, a private (10.0.0.0/8) address") == true)
        }
    }

    @Test(arguments: [
        "http://127.0.0.2:{port}/start.png", "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/a.png", "http://[::1]:{port}/start.png", "http://[::ffff:127.0.0.1]:{port}/start.png",
        "http://[fd00::1]/a.png", "http://0.0.0.0:{port}/start.png",
    ])
    func refusesRedirectsToNonPublicAddresses(_ target: String) async throws {
        try await InputServer.with { inputs in
            let to = target.replacingOccurrences(of: "{port}", with: "\(inputs.port)")
            let url = inputs.url("redirect?to=\(to.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            let error = await fetchError(ruleOnExceptLoopbackHost, url, field: "image_urls[0]")
            #expect(error?.code == 422)
            #expect(error?.message.hasPrefix("image_urls[0]: refused to fetch \(url) redirects to \(to): ") == true, "\(error?.message ?? "")")
        }
    }

    @Test func followsAtMostThreeRedirects() async throws {
        let file = scratchFile()
        defer { try? FileManager.default.removeItem(at: file) }
        try await InputServer.with { inputs in
            try await ruleOnExceptLoopbackHost.fetch(inputs.url("hops/3"), field: "image_urls[0]", maxBytes: 10_000_000, to: file)
            #expect(try Data(contentsOf: file) == Data(contentsOf: inputs.file("start.png")))
            let error = await fetchError(ruleOnExceptLoopbackHost, inputs.url("hops/4"))
            #expect(error?.message == "image_urls[0]: \(inputs.url("hops/4")) redirects more than 3 times")
        }
    }

    @Test(arguments: ["ftp://example.com/a.png", "file:///etc/passwd", "not a url", "gopher://127.0.0.1/"])
    func refusesSchemesOtherThanHTTP(_ url: String) async throws {
        let error = await fetchError(HTTPInputFetcher(), url)
        #expect(error?.code == 422)
        #expect(error?.message.contains("is not an http or https URL") == true)
    }

    @Test func refusesARedirectToAnotherScheme() async throws {
        try await InputServer.with { inputs in
            let error = await fetchError(ruleOnExceptLoopbackHost, inputs.url("redirect?to=file:///etc/passwd"))
            #expect(error?.message.hasSuffix("redirects to file:///etc/passwd is not an http or https URL") == true, "\(error?.message ?? "")")
        }
    }

    @Test(arguments: [
        ("127.0.0.1", "a loopback address"), ("10.0.0.1", "a private (10.0.0.0/8) address"),
        ("172.31.255.255", "a private (172.16.0.0/12) address"), ("192.168.1.1", "a private (192.168.0.0/16) address"),
        ("100.64.0.1", "a carrier-grade NAT (100.64.0.0/10) address"), ("169.254.169.254", "a link-local (169.254.0.0/16) address"),
        ("224.0.0.1", "a multicast address"), ("0.0.0.0", "an unspecified (0.0.0.0/8) address"),
        ("255.255.255.255", "a reserved or broadcast address"), ("::1", "a loopback address"), ("::", "an unspecified address"),
        ("fc00::1", "a unique-local (fc00::/7) address"), ("fdff::1", "a unique-local (fc00::/7) address"),
        ("fe80::1", "a link-local (fe80::/10) address"), ("ff02::1", "a multicast address"),
        ("::ffff:127.0.0.1", "an IPv4-mapped form of a loopback address"),
        ("::ffff:169.254.169.254", "an IPv4-mapped form of a link-local (169.254.0.0/16) address"),
        ("::ffff:10.0.0.1", "an IPv4-mapped form of a private (10.0.0.0/8) address"),
        ("64:ff9b::a9fe:a9fe", "a NAT64 form of a link-local (169.254.0.0/16) address"),
        ("2002:7f00:1::", "a 6to4 form of a loopback address"),
    ])
    func classifiesNonPublicAddresses(_ text: String, _ reason: String) throws {
        #expect(try #require(IPAddress(text)).nonPublicReason == reason)
    }

    @Test(arguments: ["8.8.8.8", "1.1.1.1", "100.128.0.1", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
    func acceptsPublicAddresses(_ text: String) throws {
        #expect(try #require(IPAddress(text)).nonPublicReason == nil)
    }

    // MARK: - Limits

    @Test func refusesAContentLengthOverTheLimit() async throws {
        try await InputServer.with { inputs in
            let error = await fetchError(.development, inputs.url("start.png"), maxBytes: 100)
            #expect(error?.code == 422)
            #expect(error?.message.contains("over the limit of 100 bytes") == true)
        }
    }

    @Test func abortsAStreamedBodyAsSoonAsItPassesTheLimit() async throws {
        let file = scratchFile()
        defer { try? FileManager.default.removeItem(at: file) }
        try await InputServer.with { inputs in
            let error = await fetchError(.development, inputs.url("stream?bytes=5000000"), maxBytes: 100_000)
            #expect(error?.code == 422)
            #expect(error?.message.contains("over the limit of 100000 bytes") == true, "\(error?.message ?? "")")
            // A body within the limit streams through.
            try await HTTPInputFetcher.development.fetch(inputs.url("stream?bytes=50000"), field: "image_urls[0]", maxBytes: 100_000, to: file)
            #expect(try Data(contentsOf: file).count == 50_000)
        }
    }

    @Test func stopsAtTheTotalTimeout() async throws {
        try await InputServer.with { inputs in
            var configuration = HTTPInputFetcher.Configuration()
            configuration.allowPrivateAddresses = true
            configuration.timeout = .milliseconds(300)
            // The server answers after 3 s; only the fetcher's own deadline gives this message.
            let error = await fetchError(HTTPInputFetcher(configuration: configuration), inputs.url("slow"))
            #expect(error?.message.hasSuffix("timed out after 0.3 seconds") == true, "\(error?.message ?? "")")
        }
    }

    @Test func reportsHTTPErrorStatuses() async throws {
        try await InputServer.with { inputs in
            let error = await fetchError(.development, inputs.url("missing.png"), field: "image_urls[1]")
            #expect(error?.code == 422)
            #expect(error?.message == "image_urls[1]: could not fetch \(inputs.url("missing.png")): HTTP 404")
        }
    }

    @Test func reportsARefusedConnectionQuickly() async throws {
        // Port 1 on loopback: nothing listens there. AsyncHTTPClient retries a refused connection until its connect
        // timeout (10 s by default); the fetcher's is 5 s by default, 1 s here.
        var configuration = HTTPInputFetcher.Configuration()
        configuration.allowPrivateAddresses = true
        configuration.connectTimeout = .seconds(1)
        let start = ContinuousClock.now
        let error = await fetchError(HTTPInputFetcher(configuration: configuration), "http://127.0.0.1:1/a.png")
        // About 1 s when the machine is idle; the bound leaves room for a loaded CI machine, and is still well under 10 s.
        #expect(ContinuousClock.now - start < .seconds(8))
        #expect(error?.code == 422)
        #expect(error?.message.hasPrefix("image_urls[0]: could not fetch http://127.0.0.1:1/a.png:") == true, "\(error?.message ?? "")")
    }

    // MARK: - Content checks (InputMedia)

    private func media(_ fetcher: HTTPInputFetcher = .development) -> InputMedia {
        InputMedia(fetcher: fetcher, ffprobe: "ffprobe", maxImageBytes: 10 * 1024 * 1024, maxVideoBytes: 50 * 1024 * 1024)
    }

    private func scratchDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kling-media-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func sniffsTheFormatFromTheContentNotTheNameOrContentType() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await InputServer.with { inputs in
            // Served as image/gif under a .gif name, but the bytes are PNG: accepted as PNG.
            let image = try await media().image(inputs.url("png-named.gif"), field: "image_urls[0]", as: "a", into: directory)
            #expect(image.demuxer == "png_pipe" && image.width == 400 && image.height == 400)
            // Served as image/png under a .png name, but the bytes are text: refused.
            let error = await #expect(throws: EngineError.self) {
                try await media().image(inputs.url("not-an-image.png"), field: "image_urls[0]", as: "b", into: directory)
            }
            #expect(error?.message == "image_urls[0]: \(inputs.url("not-an-image.png")) is not a JPEG or PNG image (judged by its content)")
            let video = await #expect(throws: EngineError.self) {
                try await media().video(inputs.url("start.png"), field: "elements[0].video_urls[0]", as: "c", into: directory)
            }
            #expect(video?.message.hasPrefix("elements[0].video_urls[0]:") == true)
            #expect(video?.message.hasSuffix("is not an MP4 or MOV video (judged by its content)") == true)
        }
    }

    @Test func refusesImagesThatAreTooSmallOrTooElongated() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await InputServer.with { inputs in
            let small = await #expect(throws: EngineError.self) {
                try await media().image(inputs.url("tiny.png"), field: "elements[1].image_urls[0]", as: "a", into: directory)
            }
            #expect(small?.message == "elements[1].image_urls[0]: \(inputs.url("tiny.png")) is 200x200 px; images must be at least 300x300 px")
            let wide = await #expect(throws: EngineError.self) {
                try await media().image(inputs.url("wide.png"), field: "image_urls[0]", as: "b", into: directory)
            }
            #expect(wide?.message == "image_urls[0]: \(inputs.url("wide.png")) is 1000x300 px; the aspect ratio must be between 1:2.5 and 2.5:1")
        }
    }

    @Test func readsSizesFromHeadersAndChecksThatImagesDecode() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await InputServer.with { inputs in
            let good = try await media().fetchAll(
                [
                    .init(url: inputs.url("start.png"), field: "image_urls[0]", name: "a"),
                    .init(url: inputs.url("photo.jpg"), field: "image_urls[1]", name: "b"),
                ],
                into: directory)
            #expect(
                good == [
                    .image(.init(file: "a", demuxer: "png_pipe", width: 640, height: 480)),
                    .image(.init(file: "b", demuxer: "jpeg_pipe", width: 500, height: 400)),
                ])
            // A truncated PNG has a good header, so fetching accepts it; decoding names its field.
            let inputsToCheck: [InputMedia.Input] = [
                .init(url: inputs.url("start.png"), field: "image_urls[0]", name: "c"),
                .init(url: inputs.url("truncated.png"), field: "elements[0].image_urls[0]", name: "d"),
            ]
            let fetched = try await media().fetchAll(inputsToCheck, into: directory)
            let images = zip(inputsToCheck, fetched).compactMap { input, item -> (InputMedia.Input, InputMedia.Image)? in
                if case .image(let image) = item { return (input, image) }
                return nil
            }
            try await media().checkImagesDecode(Array(images.prefix(1)), in: directory)
            let error = await #expect(throws: EngineError.self) { try await media().checkImagesDecode(images, in: directory) }
            #expect(error?.message == "elements[0].image_urls[0]: \(inputs.url("truncated.png")) could not be decoded as an image")
        }
    }

    @Test func probesVideoElements() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await InputServer.with { inputs in
            let video = try await media().video(inputs.url("clip.mp4"), field: "elements[0].video_urls[0]", as: "v", into: directory)
            #expect(video.width == 480 && video.height == 480)
            #expect(abs(video.durationSeconds - 2) < 0.1)
        }
    }
}
