import Foundation
import KlingCore
import KlingPostgres
import KlingTestSupport
import Logging
import Testing

/// The real binary in its multi-node roles on one PostgreSQL database: an API-only `serve --workers 0` and a
/// worker-only `work`, sharing an artifact directory.
@Suite(
    "Multi-node roles", .serialized, .timeLimit(.minutes(5)),
    .enabled(if: PostgresTestDatabase.serverURL != nil, "KLING_TEST_DATABASE_URL is not set (scripts/test.sh starts PostgreSQL)"))
struct MultiNodeTests {
    @Test func apiAndWorkerProcessesShareTheQueueAndTheArtifactDirectory() async throws {
        let database = try await PostgresTestDatabase.create(serverURL: try #require(PostgresTestDatabase.serverURL))
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kling-multinode-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: root) }
        var logger = Logger(label: "test.postgres")
        logger.logLevel = .warning
        let store = try await PostgresTaskStore.connect(url: database.url, logger: logger)
        let accounts = AccountService(store: store)
        _ = try await accounts.createAccount(name: "alice", credits: 10_000)
        let key = try await accounts.createKey(accountName: "alice").key

        let shared = root.appendingPathComponent("shared", isDirectory: true)
        let apiPort = RestartTests.freePort()
        let workerPort = apiPort + 1
        var environment = [
            "KLING_DATABASE_URL": database.url, "KLING_ARTIFACT_DIR": shared.path, "KLING_PUBLIC_URL": "http://127.0.0.1:\(apiPort)",
        ]
        let api = try await ServerProcess.serve(
            port: apiPort, dataDirectory: root.appendingPathComponent("api"), environment: environment, command: ["serve", "--workers", "0"])
        // The worker polls once every ten minutes: only the API's notification can wake it in time for this test.
        environment["KLING_POLL_MS"] = "600000"
        let worker = try await ServerProcess.serve(
            port: workerPort, dataDirectory: root.appendingPathComponent("worker"), environment: environment, command: ["work"])
        defer {
            api.kill()
            worker.kill()
        }

        // The worker answers health and metrics only.
        #expect(try await HTTP.get("http://127.0.0.1:\(workerPort)/readyz").status == 200)
        #expect(try await HTTP.get("http://127.0.0.1:\(workerPort)/metrics").status == 200)
        let refused = try await HTTP.post(
            "http://127.0.0.1:\(workerPort)/api/v1/jobs/createTask", headers: [("Authorization", "Bearer \(key)")], body: "{}")
        #expect(refused.status == 404)

        // Wait until the worker listens, so the notification of the create below cannot come before it.
        try await Task.sleep(for: .seconds(1))
        let created = try await HTTP.post(
            "http://127.0.0.1:\(apiPort)/api/v1/jobs/createTask", headers: [("Authorization", "Bearer \(key)")],
            body: #"{"model":"kling-3.0/video","input":{"prompt":"A lighthouse at dusk","duration":"3","mode":"std","sound":false}}"#)
        let taskID = try #require((created.json["data"] as? [String: Any])?["taskId"] as? String, "\(created.json)")

        var data: [String: Any] = [:]
        for _ in 0..<600 {
            data = try await HTTP.get(
                "http://127.0.0.1:\(apiPort)/api/v1/jobs/recordInfo?taskId=\(taskID)", headers: [("Authorization", "Bearer \(key)")]
            ).json["data"] as? [String: Any] ?? [:]
            if ["success", "fail"].contains(data["state"] as? String ?? "") { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(data["state"] as? String == "success", "task \(taskID) ended as \(data)")
        #expect(data["engine"] as? String == "preview")

        // The worker wrote into the shared directory; the API process serves the file.
        let resultJSON = try #require(data["resultJson"] as? String)
        let result = try #require(try JSONSerialization.jsonObject(with: Data(resultJSON.utf8)) as? [String: Any])
        let url = try #require((result["resultUrls"] as? [String])?.first)
        #expect(url.hasPrefix("http://127.0.0.1:\(apiPort)/files/results/\(taskID)/"))
        #expect(try await HTTP.get(url).status == 200)
        let files = try FileManager.default.subpathsOfDirectory(atPath: shared.appendingPathComponent("results/\(taskID)").path)
        #expect(files.contains("1/video.mp4"))

        // Both stop cleanly on SIGTERM, closing their database connections.
        #expect(worker.terminate() == 0)
        #expect(api.terminate() == 0)
        await store.close()
        try await database.drop()
    }
}
