import Foundation
import Hummingbird
import NIOCore

/// Reads a `multipart/form-data` upload as it streams in: small text fields are kept, the `file` part goes straight
/// to an ``UploadStore/Writer`` (never whole in memory). No multipart library is available to this package, so this
/// is the smallest parser that covers RFC 7578 as browsers and HTTP clients send it.
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

    /// Parses `body`, streaming the `file` part into `writer`.
    static func read(_ body: RequestBody, boundary: String, into writer: UploadStore.Writer) async throws -> MultipartUpload {
        let delimiter = Array("\r\n--\(boundary)".utf8)
        var upload = MultipartUpload()
        // The body starts with "--boundary"; prefixing CRLF makes every delimiter look the same.
        var buffer: [UInt8] = Array("\r\n".utf8)
        enum State { case preamble, headers, content(name: String?, isFile: Bool), done }
        var state = State.preamble
        var fieldBytes: [UInt8] = []
        var headerBytes = 0

        func process(final: Bool) throws {
            while true {
                switch state {
                case .preamble:
                    guard let range = Self.find(delimiter, in: buffer) else {
                        if buffer.count > delimiter.count { buffer.removeFirst(buffer.count - delimiter.count) }
                        return
                    }
                    buffer.removeFirst(range.upperBound)
                    state = .headers
                case .headers:
                    // After a delimiter: "--" ends the body; otherwise CRLF, headers, CRLF CRLF.
                    if buffer.count >= 2, buffer[0] == UInt8(ascii: "-"), buffer[1] == UInt8(ascii: "-") {
                        state = .done
                        return
                    }
                    guard let end = Self.find(Self.headerEnd, in: buffer) else {
                        headerBytes = buffer.count
                        if headerBytes > 16 * 1024 { throw APIError.validation("body: a multipart part has headers over 16 KB") }
                        return
                    }
                    let headers = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                    buffer.removeFirst(end.upperBound)
                    let name = Self.parameter("name", in: headers)
                    let isFile = name == "file"
                    if isFile {
                        guard !upload.sawFile else { throw APIError.validation("file: send one file per upload") }
                        upload.sawFile = true
                    }
                    fieldBytes = []
                    state = .content(name: name, isFile: isFile)
                case .content(let name, let isFile):
                    if let range = Self.find(delimiter, in: buffer) {
                        let content = buffer[..<range.lowerBound]
                        if isFile {
                            try writer.write(ByteBuffer(bytes: content))
                        } else {
                            fieldBytes.append(contentsOf: content)
                            if let name, fieldBytes.count <= 4096 { upload.fields[name] = String(decoding: fieldBytes, as: UTF8.self) }
                        }
                        buffer.removeFirst(range.upperBound)
                        state = .headers
                    } else {
                        // Everything but a possible partial delimiter at the end is content.
                        let safe = buffer.count - delimiter.count
                        guard safe > 0 else { return }
                        if isFile {
                            try writer.write(ByteBuffer(bytes: buffer[..<safe]))
                        } else {
                            fieldBytes.append(contentsOf: buffer[..<safe])
                            if fieldBytes.count > 4096 { throw APIError.validation("\(name ?? "field"): is longer than 4 KB") }
                        }
                        buffer.removeFirst(safe)
                        return
                    }
                case .done:
                    return
                }
            }
        }

        for try await chunk in body {
            buffer.append(contentsOf: chunk.readableBytesView)
            try process(final: false)
            if case .done = state { break }
        }
        try process(final: true)
        guard case .done = state else { throw APIError.validation("body: the multipart body ended before its closing boundary") }
        return upload
    }

    private static let headerEnd = Array("\r\n\r\n".utf8)

    /// The first occurrence of `needle` in `haystack` (memchr for its first byte, then a compare).
    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Range<Int>? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        return haystack.withUnsafeBufferPointer { hay -> Range<Int>? in
            needle.withUnsafeBufferPointer { pin -> Range<Int>? in
                guard let base = hay.baseAddress, let first = pin.baseAddress else { return nil }
                var offset = 0
                let last = hay.count - pin.count
                while offset <= last {
                    guard let hit = memchr(base + offset, Int32(pin[0]), last - offset + 1) else { return nil }
                    let index = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    if memcmp(base + index, first, pin.count) == 0 { return index..<index + pin.count }
                    offset = index + 1
                }
                return nil
            }
        }
    }

    /// `name="value"` from a part's Content-Disposition header.
    static func parameter(_ key: String, in headers: String) -> String? {
        for line in headers.split(separator: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
            for item in line.split(separator: ";").dropFirst() {
                let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if pair.count == 2, pair[0].lowercased() == key { return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            }
        }
        return nil
    }
}
