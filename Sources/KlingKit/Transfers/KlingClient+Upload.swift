import AsyncHTTPClient
import Foundation
import KlingAPI
import NIOCore

/// A file stored by the provider's upload endpoint.
public struct UploadedFile: Sendable, Hashable {
    /// The stored file's name.
    public var fileName: String
    /// Its path on the provider.
    public var filePath: String
    /// A link to it that works as an image or element URL in requests.
    public var downloadURL: String
    /// Its size in bytes.
    public var fileSize: Int64
    /// The type sniffed from its bytes.
    public var mimeType: String
}

extension KlingClient {
    /// Uploads a local file (Market `POST /api/file-stream-upload`, streamed from disk as multipart; needs an API key)
    /// and returns its link, usable as a first or last frame or an element image.
    ///
    /// - Parameters:
    ///   - file: the local file.
    ///   - uploadPath: the folder on the provider (the same name in the same folder replaces the file).
    ///   - fileName: the stored name; by default the local file's name.
    public func upload(file: URL, uploadPath: String = "kling-uploads", fileName: String? = nil) async throws(KlingError) -> UploadedFile {
        guard let key = configuration.credentials.apiKey else {
            throw KlingError(
                .unsupported,
                message: "uploads need an API key; Kling access keys only work on the /v1/videos endpoints."
                    + " Use an API key, or pass images as http(s) URLs")
        }
        let size: Int64
        do {
            guard let value = try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber else {
                throw KlingError(.validation, message: "\(file.path): cannot read the file's size")
            }
            size = value.int64Value
        } catch let error as KlingError {
            throw error
        } catch {
            throw KlingError(.validation, message: "\(file.path): cannot be read (\(error.localizedDescription))")
        }
        let name = fileName ?? file.lastPathComponent
        let boundary = "KlingKit-\(UUID().uuidString)"
        let head = Data(
            ("--\(boundary)\r\nContent-Disposition: form-data; name=\"uploadPath\"\r\n\r\n\(uploadPath)\r\n"
                + "--\(boundary)\r\nContent-Disposition: form-data; name=\"fileName\"\r\n\r\n\(name)\r\n"
                + "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(Self.quoted(name))\"\r\n"
                + "Content-Type: application/octet-stream\r\n\r\n").utf8)
        let tail = Data("\r\n--\(boundary)--\r\n".utf8)
        var request = HTTPClientRequest(url: url("/api/file-stream-upload"))
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        request.headers.add(name: "User-Agent", value: configuration.userAgent)
        request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        request.body = .stream(
            MultipartFileBody(head: head, file: file, tail: tail), length: .known(Int64(head.count) + size + Int64(tail.count)))
        let data: JSONValue
        do {
            let response = try await http.execute(request, timeout: .init(configuration.timeouts.download))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            data = try WireAnswer.data(
                status: Int(response.status.code), body: Data(bytes.readableBytesView), headers: response.headers.map { ($0.name, $0.value) },
                dialect: .market)
        } catch let error as KlingError {
            var error = error
            error.message = "\(file.lastPathComponent): \(error.message)"
            throw error
        } catch {
            throw KlingError(.transport, message: "uploading \(file.lastPathComponent) failed: \(error)")
        }
        guard let link = data["downloadUrl"]?.stringValue else {
            throw KlingError(.transport, message: "the upload answer has no data.downloadUrl")
        }
        return UploadedFile(
            fileName: data["fileName"]?.stringValue ?? name, filePath: data["filePath"]?.stringValue ?? "", downloadURL: link,
            fileSize: data["fileSize"].flatMap(WireAnswer.codeText).flatMap { Int64($0) } ?? size,
            mimeType: data["mimeType"]?.stringValue ?? "")
    }

    static func quoted(_ name: String) -> String {
        name.replacingOccurrences(of: "\\", with: "_").replacingOccurrences(of: "\"", with: "_")
            .replacingOccurrences(of: "\r", with: "_").replacingOccurrences(of: "\n", with: "_")
    }
}

/// A multipart body read from disk in 256 KiB chunks as the connection takes them: the part headers, the file, the
/// closing boundary.
struct MultipartFileBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let head: Data
    let file: URL
    let tail: Data

    func makeAsyncIterator() -> Iterator { Iterator(body: self) }

    struct Iterator: AsyncIteratorProtocol {
        let body: MultipartFileBody
        var stage = 0
        var handle: FileHandle?

        mutating func next() async throws -> ByteBuffer? {
            switch stage {
            case 0:
                stage = 1
                handle = try FileHandle(forReadingFrom: body.file)
                return ByteBuffer(bytes: body.head)
            case 1:
                if let chunk = try handle?.read(upToCount: 256 << 10), !chunk.isEmpty { return ByteBuffer(bytes: chunk) }
                try handle?.close()
                handle = nil
                stage = 2
                return ByteBuffer(bytes: body.tail)
            default:
                return nil
            }
        }
    }
}
