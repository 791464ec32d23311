import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// `GET /openapi.json` and the `X-Request-Id` header every answer carries.
@Suite("OpenAPI document and request ids", .timeLimit(.minutes(3)))
struct OpenAPIDocumentTests {
    static let requestID = HTTPField.Name("X-Request-Id")!

    @Test func documentIsServedWithoutAuthAndDescribesEveryDialect() async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            let answer = try await client.execute(uri: "/openapi.json", method: .get) { JSONAnswer($0) }
            #expect(answer.status == 200)
            let document = answer.object
            #expect(document["openapi"] as? String == "3.1.0")
            let paths = try #require(document["paths"] as? [String: Any])
            for path in [
                "/api/v1/jobs/createTask", "/api/v1/jobs/recordInfo", "/api/v1/jobs/quote", "/api/v1/chat/credit", "/api/v1/callbacks",
                "/api/v1/jobs/{taskId}/cancel", "/api/v1/jobs/{taskId}/events", "/api/v1/client/job/CreateTask",
                "/api/v1/client/job/TaskInfo", "/api/v1/client/account/balance", "/v1/videos/text2video", "/v1/videos/image2video",
                "/v1/videos/text2video/{task_id}", "/v1/videos", "/v1/videos/{video_id}", "/v1/videos/{video_id}/content",
                "/api/file-base64-upload", "/api/file-stream-upload", "/api/file-url-upload", "/api/v1/common/download-url",
                "/api/v1/jobs/list", "/healthz", "/readyz", "/metrics", "/openapi.json", "/", "/playground/{file}",
            ] {
                #expect(paths[path] != nil, "\(path) is documented")
            }
            let components = try #require(document["components"] as? [String: Any])
            let schemes = try #require(components["securitySchemes"] as? [String: Any])
            #expect(Set(schemes.keys) == ["BearerAuth", "ApiKeyAuth", "KlingJWT"])
            let schemas = try #require(components["schemas"] as? [String: Any])
            for envelope in ["MarketError", "CRUNError", "KlingError", "OpenAIError"] { #expect(schemas[envelope] != nil) }
        }
    }

    @Test func everyAnswerEchoesTheCallersRequestIdOrANewOne() async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            // The caller's id comes back, also on an error answered by a dialect's middleware.
            let unauthorized = try await client.execute(
                uri: "/api/v1/chat/credit", method: .get, headers: [Self.requestID: "client-trace-42"]
            ) { $0 }
            #expect(unauthorized.status == .unauthorized)
            #expect(unauthorized.headers[Self.requestID] == "client-trace-42")
            // Without one (or with one that is not visible ASCII), the server makes one up.
            let health = try await client.execute(uri: "/healthz", method: .get) { $0 }
            let generated = try #require(health.headers[Self.requestID])
            #expect(generated.hasPrefix("req_"))
            let invalid = try await client.execute(uri: "/healthz", method: .get, headers: [Self.requestID: "has space"]) { $0 }
            #expect(invalid.headers[Self.requestID]?.hasPrefix("req_") == true)
            #expect(invalid.headers[Self.requestID] != generated)
            // A signed-file refusal and an unknown route carry one too.
            let refused = try await client.execute(uri: "/files/results/x/video.mp4", method: .get) { $0 }
            #expect(refused.status == .forbidden)
            #expect(refused.headers[Self.requestID]?.hasPrefix("req_") == true)
            let unknown = try await client.execute(uri: "/no/such/route", method: .get, headers: [Self.requestID: "lost-1"]) { $0 }
            #expect(unknown.status == .notFound)
            #expect(unknown.headers[Self.requestID] == "lost-1")
        }
    }
}
