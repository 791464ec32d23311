import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

@testable import KlingKit

/// Local validation says exactly what the server says: the same bad requests give the same field messages, and
/// an invalid request never reaches the network.
@Suite("Validation parity", .serialized, .timeLimit(.minutes(3)))
struct ValidationParityTests {
    /// Bad requests every dialect can express.
    static let badRequests: [(String, VideoRequest)] = [
        ("empty prompt", VideoRequest(prompt: "   ").duration(5)),
        ("duration out of range", VideoRequest(prompt: "a cat").duration(20)),
        ("gif first frame", VideoRequest(prompt: "a cat").firstFrame("https://example.com/cat.gif")),
        ("relative image URL", VideoRequest(prompt: "a cat").firstFrame("cat.png").lastFrame("ftp://example.com/b.png")),
        (
            "shots that do not add up",
            VideoRequest(prompt: "story").firstFrame("https://example.com/a.png")
                .shots([.init(prompt: "one", duration: 3), .init(prompt: "two", duration: 13)]).duration(5)
        ),
        ("multi-shot without an image", VideoRequest(prompt: "story").shots([.init(prompt: "", duration: 5)]).duration(5)),
        ("bad callback", VideoRequest(prompt: "a cat").callback("not a url")),
        ("several problems", VideoRequest(prompt: "").duration(2).firstFrame("https://example.com/x.webp")),
    ]

    /// Bad element requests (Market and CRUN have elements).
    static let badElementRequests: [(String, VideoRequest)] = [
        ("undefined element", VideoRequest(prompt: "@robot walks").firstFrame("https://example.com/a.png")),
        (
            "bad element name and images",
            VideoRequest(prompt: "@ok walks").firstFrame("https://example.com/a.png")
                .element("bad name", description: "", imageURLs: ["https://example.com/e.bmp"])
        ),
    ]

    /// What the server answers for a body sent as is (bypassing the client's checks).
    func serverMessage(_ wire: WireRequest, dialect: KlingClient.Dialect, baseURL: String, key: String) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: baseURL + wire.path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if dialect == .crun { request.headers.add(name: "x-api-key", value: key) } else { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        request.body = .bytes(ByteBuffer(data: wire.data))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])
        return (Int(response.status.code), (object["msg"] ?? object["message"]) as? String ?? "")
    }

    @Test(arguments: [KlingClient.Dialect.market, .crun, .klingOfficial])
    func localMessagesMatchTheServersMessages(dialect: KlingClient.Dialect) async throws {
        let server = try await LiveServer.make(workers: 0)
        try await server.run { baseURL in
            let cases = Self.badRequests + (dialect == .klingOfficial ? [] : Self.badElementRequests)
            for (name, request) in cases {
                let local = request.validate(for: dialect)
                #expect(!local.isEmpty, "\(name): no local issues")
                let (status, message) = try await serverMessage(WireRequest(request, dialect: dialect), dialect: dialect, baseURL: baseURL, key: server.key)
                #expect(status == (dialect == .klingOfficial ? 400 : 422), "\(name): HTTP \(status) \(message)")
                #expect(local.summary == message, "\(name) in \(dialect)")
            }
            #expect(try await server.totalTasks() == 0)
        }
    }

    @Test(arguments: [KlingClient.Dialect.market, .crun, .klingOfficial])
    func invalidRequestsFailBeforeAnyNetworkCall(dialect: KlingClient.Dialect) async throws {
        // Nothing listens on port 9 of loopback: a request that reached the network would be a transport error.
        let client = KlingClient(configuration: .init(baseURL: "http://127.0.0.1:9", credentials: dialect.credentials(apiKey: "k"), dialect: dialect))
        let error = await #expect(throws: KlingError.self) {
            try await client.create(VideoRequest(prompt: "a cat").duration(20).firstFrame("https://example.com/cat.gif"))
        }
        #expect(error?.kind == .validation)
        #expect(error?.httpStatus == nil)
        let duration = dialect == .market ? "input.duration" : (dialect == .crun ? "input.duration" : "duration")
        #expect(error?.issues.first?.field == duration)
        #expect(error?.issues.first?.message == "must be between 3 and 15 seconds (got 20)")
        #expect(error?.issues.count == 2)
    }

    @Test func dialectLimitsAreReportedLocally() {
        let intelligent = VideoRequest(prompt: "a story in three shots").firstFrame("https://example.com/a.png").intelligentShots()
        #expect(intelligent.validate(for: .market).first?.field == "input.shot_type")
        #expect(intelligent.validate(for: .crun).isEmpty)
        #expect(intelligent.validate(for: .klingOfficial).isEmpty)
        let withElement = VideoRequest(prompt: "@fox runs").firstFrame("https://example.com/a.png")
            .element("fox", description: "a fox", imageURLs: ["https://example.com/f1.png", "https://example.com/f2.png"])
        #expect(withElement.validate(for: .market).isEmpty)
        #expect(withElement.validate(for: .klingOfficial).first?.field == "elements")
    }

    @Test func theServerAcceptsWhatLocalValidationAccepts() async throws {
        let server = try await LiveServer.make(workers: 0)
        try await server.run { baseURL in
            let good = VideoRequest(prompt: "Anna says \"hello\" to @fox").firstFrame("https://example.com/a.png")
                .shots([.init(prompt: "Anna waves at @fox", duration: 2), .init(prompt: "they walk", duration: 3)]).duration(5)
                .element("fox", description: "a red fox", imageURLs: ["https://example.com/f1.png", "https://example.com/f2.png"])
            for dialect in [KlingClient.Dialect.market, .crun] {
                #expect(good.validate(for: dialect).isEmpty)
                _ = try await server.client(baseURL, dialect).create(good)
            }
            let kling = VideoRequest(prompt: "push in on the city").mode(.pro).duration(5).camera(.pushIn).aspectRatio(.portrait).externalTaskID("ext-1")
            #expect(kling.validate(for: .klingOfficial).isEmpty)
            let first = try await server.client(baseURL, .klingOfficial, jwt: true).create(kling)
            // The external id makes a repeated create return the first task.
            #expect(try await server.client(baseURL, .klingOfficial, jwt: true).create(kling).id == first.id)
            #expect(try await server.client(baseURL, .klingOfficial, jwt: true).task("ext-1").id == first.id)
            #expect(try await server.totalTasks() == 3)
        }
    }
}
