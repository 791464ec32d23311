import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import KlingKit
import NIOCore
import Testing

/// Downloads resume with `Range` after an interrupted transfer: a loopback relay in front of the real server cuts
/// the connection in the middle of the body.
@Suite("Download resume", .serialized, .timeLimit(.minutes(3)))
struct DownloadResumeTests {
    struct Cut: Error {}

    /// What the relay does and what it saw.
    actor Relay {
        /// Requests to answer with half the body and then a dropped connection.
        var cutsLeft: Int
        /// While set, requests after the cuts answer 503.
        var unavailable: Bool
        var ranges: [String?] = []
        init(cuts: Int, unavailableAfterCuts: Bool) {
            cutsLeft = cuts
            unavailable = unavailableAfterCuts
        }
        /// Records a request; whether to cut it, or to refuse it.
        func next(range: String?) -> (cut: Bool, refuse: Bool) {
            ranges.append(range)
            if cutsLeft > 0 {
                cutsLeft -= 1
                return (true, false)
            }
            return (false, unavailable)
        }
        func setAvailable() { unavailable = false }
    }

    /// A relay to `upstream` (set once the server runs) that forwards Range and If-Range.
    static func router(relay: Relay, upstream: @escaping @Sendable () -> String) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("**") { request, _ -> Response in
            let range = request.headers[.range]
            let decision = await relay.next(range: range)
            if decision.refuse { return Response(status: .serviceUnavailable) }
            var forward = HTTPClientRequest(url: upstream() + request.uri.description)
            if let range { forward.headers.add(name: "Range", value: range) }
            if let ifRange = request.headers[HTTPField.Name("If-Range")!] { forward.headers.add(name: "If-Range", value: ifRange) }
            let answer = try await HTTPClient.shared.execute(forward, timeout: .seconds(30))
            let bytes = try await answer.body.collect(upTo: 64 << 20)
            var headers = HTTPFields()
            for name in ["Content-Type", "Content-Range", "ETag", "Last-Modified", "Accept-Ranges"] {
                if let value = answer.headers.first(name: name) { headers[HTTPField.Name(name)!] = value }
            }
            headers[.contentLength] = String(bytes.readableBytes)
            let status = HTTPResponse.Status(code: Int(answer.status.code))
            guard decision.cut else { return Response(status: status, headers: headers, body: .init(byteBuffer: bytes)) }
            let half = bytes.getSlice(at: bytes.readerIndex, length: bytes.readableBytes / 2)!
            return Response(
                status: status, headers: headers,
                body: ResponseBody { writer in
                    try await writer.write(half)
                    throw Cut()
                })
        }
        return router
    }

    /// Renders one short video and returns its link, the original bytes, and the server's base URL to `body`.
    static func withRenderedVideo(_ body: @Sendable (_ server: LiveServer, _ baseURL: String, _ link: String, _ original: Data) async throws -> Void) async throws {
        let server = try await LiveServer.make(workers: 1)
        try await server.run { baseURL in
            let client = server.client(baseURL, .market)
            let task = try await client.waitUntilFinished(try await client.create(VideoRequest(prompt: "waves").mode(.std).duration(3)).id)
            let link = try #require(task.videoURL)
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("klingkit-orig-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let direct = try await client.download(url: link, to: folder.appendingPathComponent("direct.mp4"))
            try await body(server, baseURL, link, try Data(contentsOf: direct.file))
        }
    }

    static func through(_ relay: String, _ link: String, base: String) -> String {
        relay + link.dropFirst(base.count)
    }

    @Test func resumesWithRangeAfterTheConnectionDropsMidBody() async throws {
        try await Self.withRenderedVideo { server, baseURL, link, original in
            let relay = Relay(cuts: 1, unavailableAfterCuts: false)
            try await withLoopbackApp(Self.router(relay: relay, upstream: { baseURL })) { relayURL in
                let file = FileManager.default.temporaryDirectory.appendingPathComponent("klingkit-resume-\(UUID().uuidString).mp4")
                defer { try? FileManager.default.removeItem(at: file) }
                let result = try await server.client(baseURL, .market).download(url: Self.through(relayURL, link, base: baseURL), to: file)
                #expect(result.resumes == 1)
                #expect(try Data(contentsOf: file) == original)
                let ranges = await relay.ranges
                #expect(ranges.count == 2)
                #expect(ranges.first == .some(nil))
                #expect(ranges.last == "bytes=\(original.count / 2)-")
            }
        }
    }

    @Test func aLaterCallResumesAPartialFileLeftByAFailedOne() async throws {
        try await Self.withRenderedVideo { server, baseURL, link, original in
            let relay = Relay(cuts: 1, unavailableAfterCuts: true)
            try await withLoopbackApp(Self.router(relay: relay, upstream: { baseURL })) { relayURL in
                let file = FileManager.default.temporaryDirectory.appendingPathComponent("klingkit-resume-\(UUID().uuidString).mp4")
                defer {
                    for suffix in ["", ".part", ".part.info"] { try? FileManager.default.removeItem(atPath: file.path + suffix) }
                }
                var configuration = server.client(baseURL, .market).configuration
                configuration.maxAttempts = 2
                let client = KlingClient(configuration: configuration)
                let url = Self.through(relayURL, link, base: baseURL)
                let failure = await #expect(throws: KlingError.self) { try await client.download(url: url, to: file) }
                #expect(failure?.message.contains("run the download again to resume") == true)
                let partial = try Data(contentsOf: URL(fileURLWithPath: file.path + ".part"))
                #expect(partial == original.prefix(original.count / 2))

                await relay.setAvailable()
                let result = try await client.download(url: url, to: file)
                #expect(try Data(contentsOf: file) == original)
                #expect(result.bytes == Int64(original.count))
                #expect(await relay.ranges.last == "bytes=\(original.count / 2)-")
                #expect(!FileManager.default.fileExists(atPath: file.path + ".part"))
            }
        }
    }
}
