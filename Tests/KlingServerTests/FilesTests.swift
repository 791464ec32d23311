import Foundation
import HTTPTypes
import HummingbirdTesting
import KlingCore
import KlingServer
import NIOCore
import Testing

/// Signed file links, uploads of every kind, download-url and retention, through HTTP.
@Suite("Files: links, uploads, retention", .timeLimit(.minutes(5)))
struct FilesTests {
    /// A 400x400 PNG made by ffmpeg.
    static let png: Data = {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kling-upload-\(UUID().uuidString).png")
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=400x400", "-frames:v", "1", file.path]
        try? process.run()
        process.waitUntilExit()
        return (try? Data(contentsOf: file)) ?? Data()
    }()

    static func pathAndQuery(_ url: String) throws -> String {
        try #require(URLComponents(string: url).map { $0.percentEncodedPath + "?" + ($0.percentEncodedQuery ?? "") })
    }

    func upload(_ client: any TestClientProtocol, key: String, json: String, path: String = "/api/file-base64-upload") async throws -> JSONAnswer {
        try await client.execute(
            uri: path, method: .post, headers: TestDialect.market.headers(key: key), body: ByteBuffer(string: json)
        ) { JSONAnswer($0) }
    }

    func multipart(_ client: any TestClientProtocol, key: String, file: Data, fields: [String: String]) async throws -> JSONAnswer {
        let boundary = "kling-\(UUID().uuidString)"
        var body = Data()
        for (name, value) in fields {
            body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
        }
        body.append(
            Data(
                "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    .utf8))
        body.append(file)
        body.append(Data("\r\n--\(boundary)--\r\n".utf8))
        var headers = TestDialect.market.headers(key: key)
        headers[.contentType] = "multipart/form-data; boundary=\(boundary)"
        return try await client.execute(uri: "/api/file-stream-upload", method: .post, headers: headers, body: ByteBuffer(data: body)) {
            JSONAnswer($0)
        }
    }

    @Test func base64UploadAnswersTheContractAndServesTheBytesAndOverwrites() async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            let encoded = Self.png.base64EncodedString()
            let first = try await upload(client, key: server.key, json: #"{"base64Data":"\#(encoded)","uploadPath":"images/a","fileName":"cat.png"}"#)
            #expect(first.status == 200, "\(first.raw)")
            #expect(first.object["success"] as? Bool == true)
            #expect(first.code == 200)
            let data = try #require(first.data)
            #expect(data["fileName"] as? String == "cat.png")
            #expect(data["filePath"] as? String == "images/a/cat.png")
            #expect(data["fileSize"] as? Int == Self.png.count)
            #expect(data["mimeType"] as? String == "image/png")
            #expect(data["uploadedAt"] is String)
            let link = try #require(data["downloadUrl"] as? String)
            let served = try await client.execute(uri: try Self.pathAndQuery(link), method: .get) { $0 }
            #expect(served.status == .ok)
            #expect(Data(buffer: served.body) == Self.png)

            // A data: URL, same name and path: replaces the file.
            let replacement = Self.png + Data([0, 0, 0])
            let second = try await upload(
                client, key: server.key,
                json: #"{"base64Data":"data:image/png;base64,\#(replacement.base64EncodedString())","uploadPath":"images/a","fileName":"cat.png"}"#)
            let again = try await client.execute(uri: try Self.pathAndQuery(try #require(second.data?["downloadUrl"] as? String)), method: .get) {
                $0
            }
            #expect(Data(buffer: again.body) == replacement)

            for (body, field) in [
                (#"{"uploadPath":"x"}"#, "base64Data"), (#"{"base64Data":"%%%","uploadPath":"x"}"#, "base64Data"),
                (#"{"base64Data":"AAAA","uploadPath":"../etc"}"#, "uploadPath"),
                (#"{"base64Data":"AAAA","uploadPath":"x","fileName":"a/b"}"#, "fileName"),
            ] {
                let bad = try await upload(client, key: server.key, json: body)
                #expect(bad.status == 422, "\(body)")
                #expect(bad.message(.market).hasPrefix(field), "\(bad.raw)")
            }
            #expect(try await upload(client, key: "wrong", json: #"{"base64Data":"AAAA","uploadPath":"x"}"#).status == 401)
        }
    }

    @Test func streamedUploadIsUsableAsAFirstFrameAndOversizeIsRefused() async throws {
        let server = try await TestServer.make(workers: 1)
        try await server.run { client in
            let uploaded = try await multipart(client, key: server.key, file: Self.png, fields: ["uploadPath": "frames", "fileName": "first.png"])
            #expect(uploaded.status == 200, "\(uploaded.raw)")
            let link = try #require(uploaded.data?["downloadUrl"] as? String)
            #expect(uploaded.data?["fileSize"] as? Int == Self.png.count)

            // The engine reads the upload from disk: no loopback fetch needed.
            let body = #"{"model":"kling-3.0/video","input":{"prompt":"p","duration":"3","mode":"std","image_urls":["\#(link)"]}}"#
            let created = try await client.create(.market, body: body, key: server.key)
            let id = try #require(created.data?["taskId"] as? String, "\(created.raw)")
            let done = try await client.waitForTerminal(.market, id: id, key: server.key)
            #expect(done.data?["state"] as? String == "success", "\(done.raw)")

            // An image over 10 MB: refused as it streams, nothing kept.
            var big = Self.png.prefix(16)
            big.append(Data(count: 11 * 1024 * 1024))
            let refused = try await multipart(client, key: server.key, file: Data(big), fields: ["uploadPath": "frames", "fileName": "big.png"])
            #expect(refused.status == 413)
            #expect(refused.message(.market).contains("images may be at most 10 MB"))
            let folder = server.directory.appendingPathComponent("artifacts/uploads")
            let stored = FileManager.default.enumerator(atPath: folder.path)?.allObjects.compactMap { $0 as? String } ?? []
            #expect(!stored.contains { $0.hasSuffix("big.png") })
            let scratch = (try? FileManager.default.contentsOfDirectory(atPath: server.directory.appendingPathComponent("artifacts/tmp").path)) ?? []
            #expect(scratch.filter { $0.hasPrefix("upload-") }.isEmpty, "no partial upload left behind")

            let missing = try await multipart(client, key: server.key, file: Self.png, fields: [:])
            #expect(missing.status == 422)
            #expect(missing.message(.market).hasPrefix("uploadPath"))
        }
    }

    @Test func urlUploadGoesThroughTheSafeFetcher() async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            // First a file to fetch: this server's own upload, reachable on loopback (the test server allows private).
            let encoded = Self.png.base64EncodedString()
            let source = try await upload(client, key: server.key, json: #"{"base64Data":"\#(encoded)","uploadPath":"src"}"#)
            let link = try #require(source.data?["downloadUrl"] as? String)
            let port = try #require(client.port)
            let loopback = link.replacingOccurrences(of: "http://localhost:\(port)", with: "http://127.0.0.1:\(port)")
            let fetched = try await upload(
                client, key: server.key, json: #"{"fileUrl":"\#(loopback)","uploadPath":"copies","fileName":"copy.png"}"#,
                path: "/api/file-url-upload")
            #expect(fetched.status == 200, "\(fetched.raw)")
            #expect(fetched.data?["fileSize"] as? Int == Self.png.count)
            #expect(fetched.data?["mimeType"] as? String == "image/png")
        }
        let strict = try await TestServer.make(allowPrivateFetches: false)
        try await strict.run { client in
            let refused = try await upload(
                client, key: strict.key, json: #"{"fileUrl":"http://127.0.0.1:9/x.png","uploadPath":"copies"}"#, path: "/api/file-url-upload")
            #expect(refused.status == 422)
            #expect(refused.message(.market).hasPrefix("fileUrl"), "\(refused.raw)")
        }
    }

    @Test func linksAreSignedExpireAndRenewOnlyForTheirOwner() async throws {
        let server = try await TestServer.make(workers: 1) { $0.resultLinkLifetime = .seconds(3) }
        try await server.run { client in
            let body = #"{"model":"kling-3.0/video","input":{"prompt":"p","duration":"3","mode":"std"}}"#
            let id = try #require(try await client.create(.market, body: body, key: server.key).data?["taskId"] as? String)
            let done = try #require(try await client.waitForTerminal(.market, id: id, key: server.key).data)
            let resultJSON = try #require(done["resultJson"] as? String)
            let url = try #require(
                ((try JSONSerialization.jsonObject(with: Data(resultJSON.utf8)) as? [String: Any])?["resultUrls"] as? [String])?.first)
            let path = try Self.pathAndQuery(url)
            #expect(try await client.execute(uri: path, method: .get) { $0.status } == .ok)

            // Tampered signature, another file under a valid signature, a missing file: the same 403.
            let tampered = path.replacingOccurrences(of: "signature=", with: "signature=0")
            let otherFile = path.replacingOccurrences(of: "video.mp4", with: "cover.jpg")
            let missing = path.replacingOccurrences(of: id, with: "task_missing")
            var bodies: Set<String> = []
            for candidate in [tampered, otherFile, missing, path.components(separatedBy: "?")[0]] {
                let answer = try await client.execute(uri: candidate, method: .get) { JSONAnswer($0) }
                #expect(answer.status == 403, "\(candidate)")
                bodies.insert(answer.raw)
            }
            #expect(bodies.count == 1, "refusals do not reveal whether the file exists")

            // Renewal: the owner gets a 20-minute link; another account and foreign URLs get 422.
            func renew(_ link: String, key: String) async throws -> JSONAnswer {
                try await client.execute(
                    uri: "/api/v1/common/download-url", method: .post, headers: TestDialect.market.headers(key: key),
                    body: ByteBuffer(string: #"{"url":"\#(link)"}"#)
                ) { JSONAnswer($0) }
            }
            let renewed = try await renew(url, key: server.key)
            #expect(renewed.status == 200, "\(renewed.raw)")
            let fresh = try #require(renewed.object["data"] as? String)
            let freshExpiry = try #require(URLComponents(string: fresh)?.queryItems?.first { $0.name == "expires" }?.value.flatMap { Int64($0) })
            #expect(abs(freshExpiry - (TaskWorker.nowMillis() / 1000 + 1200)) < 30)
            #expect(try await renew(url, key: server.otherKey).status == 422)
            #expect(try await renew("https://example.com/video.mp4", key: server.key).status == 422)
            #expect(try await renew(url.replacingOccurrences(of: "signature=", with: "signature=1"), key: server.key).status == 422)

            // After the 3 s lifetime the original link is refused; the renewed one still works, and renewing an
            // expired but authentic link is allowed.
            try await Task.sleep(for: .seconds(4))
            #expect(try await client.execute(uri: path, method: .get) { $0.status } == .forbidden)
            #expect(try await client.execute(uri: try Self.pathAndQuery(fresh), method: .get) { $0.status } == .ok)
            #expect(try await renew(url, key: server.key).status == 200)
        }
    }

    @Test func retentionDeletesOldResultsAndUploadsAndMarksTheTasks() async throws {
        let server = try await TestServer.make(workers: 1) {
            $0.resultRetention = .seconds(1)
            $0.uploadRetention = .seconds(1)
            $0.retentionSweepInterval = .milliseconds(300)
        }
        try await server.run { client in
            let uploaded = try await upload(client, key: server.key, json: #"{"base64Data":"\#(Self.png.base64EncodedString())","uploadPath":"old"}"#)
            let uploadLink = try #require(uploaded.data?["downloadUrl"] as? String)
            let body = #"{"model":"kling-3.0/video","input":{"prompt":"p","duration":"3","mode":"std"}}"#
            let id = try #require(try await client.create(.market, body: body, key: server.key).data?["taskId"] as? String)
            _ = try await client.waitForTerminal(.market, id: id, key: server.key)
            let folder = server.directory.appendingPathComponent("artifacts/results/\(id)")
            var gone = false
            for _ in 0..<50 {
                if !FileManager.default.fileExists(atPath: folder.path), try await server.store.task(id: id)?.resultsExpiredAt != nil {
                    gone = true
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(gone)
            let details = try #require(try await client.query(.market, id: id, key: server.key).data)
            #expect(details["state"] as? String == "success")
            #expect(details["resultJson"] is NSNull)
            // The upload's link expired with it (links count whole seconds), and the file is gone from disk.
            try await Task.sleep(for: .milliseconds(2100))
            #expect(try await client.execute(uri: try Self.pathAndQuery(uploadLink), method: .get) { $0.status } == .forbidden)
            let uploads = server.directory.appendingPathComponent("artifacts/uploads").path
            let left = FileManager.default.enumerator(atPath: uploads)?.allObjects.compactMap { $0 as? String }.filter { $0.hasSuffix(".png") } ?? []
            #expect(left.isEmpty, "\(left)")
        }
    }
}
