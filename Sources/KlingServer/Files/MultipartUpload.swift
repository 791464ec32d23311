import Foundation
import Hummingbird
import MultipartKit
import NIOCore

/// Reads a `multipart/form-data` upload as it streams in, with MultipartKit's streaming parser: small text fields
/// are kept, the `file` part goes straight to an ``UploadStore/Writer`` (never whole in memory).
struct MultipartUpload {
    var fields: [String: String] = [:]
    var sawFile = false

    /// The boundary of a `multipart/form-data` content type, or `nil`.
    static func boundary(_ contentType: String?) -> String? {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == "boundary" {
                let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                return value.isEmpty || value.count > 200 ? nil : value
            }
        }
        return nil
    }

    /// The parser's callbacks are synchronous: they collect into this, and errors are raised after each chunk.
    private final class Collector {
        var upload = MultipartUpload()
        var currentName: String?
        var currentIsFile = false
        var fieldBytes: [UInt8] = []
        var fileComplete = false
        var failure: (any Error)?
        var headerBytes = 0
    }

    /// Parses `body`, streaming the part named `fileField` into `writer`.
    static func read(
        _ body: RequestBody, boundary: String, fileField: String = "file", into writer: UploadStore.Writer
    ) async throws -> MultipartUpload {
        let parser = MultipartParser(boundary: boundary)
        let state = Collector()
        parser.onHeader = { name, value in
            state.headerBytes += name.utf8.count + value.utf8.count
            if state.headerBytes > 16 * 1024 { state.failure = state.failure ?? APIError.validation("body: multipart headers over 16 KB") }
            guard name.lowercased() == "content-disposition" else { return }
            state.currentName = Self.parameter("name", inDisposition: value)
            state.currentIsFile = state.currentName == fileField
            if state.currentIsFile {
                if state.upload.sawFile { state.failure = state.failure ?? APIError.validation("\(fileField): send one file") }
                state.upload.sawFile = true
            }
        }
        parser.onBody = { buffer in
            guard state.failure == nil else { return }
            if state.currentIsFile {
                do { try writer.write(buffer) } catch { state.failure = error }
            } else {
                state.fieldBytes.append(contentsOf: buffer.readableBytesView)
                if state.fieldBytes.count > 4096 {
                    state.failure = APIError.validation("\(state.currentName ?? "field"): is longer than 4 KB")
                }
            }
        }
        parser.onPartComplete = {
            if state.currentIsFile {
                state.fileComplete = true
            } else if let name = state.currentName, state.fieldBytes.count <= 4096 {
                state.upload.fields[name] = String(decoding: state.fieldBytes, as: UTF8.self)
            }
            state.currentName = nil
            state.currentIsFile = false
            state.fieldBytes = []
            state.headerBytes = 0
        }
        for try await chunk in body {
            do {
                try parser.execute(chunk)
            } catch {
                throw APIError.validation("body: is not valid multipart/form-data")
            }
            if let failure = state.failure { throw failure }
        }
        if let failure = state.failure { throw failure }
        if state.upload.sawFile && !state.fileComplete {
            throw APIError.validation("body: the multipart body ended before the file part was complete")
        }
        return state.upload
    }

    /// `name="value"` from a Content-Disposition header value.
    static func parameter(_ key: String, inDisposition value: String) -> String? {
        for item in value.split(separator: ";").dropFirst() {
            let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == key { return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        return nil
    }
}
