import Foundation
import Hummingbird
import KlingCore
import NIOCore

/// Where uploads live (`artifacts/uploads/<account>/<uploadPath>/<fileName>`) and how they are written: streamed to
/// a temporary file with a hard byte limit that depends on the content (sniffed from its first bytes), then moved
/// into place, so a repeated fileName in the same uploadPath replaces the old file whole.
struct UploadStore: Sendable {
    let root: URL
    let scratch: URL
    let links: ResultLinks
    let retention: Duration

    /// What the content turned out to be, with its limit.
    struct Kind: Sendable {
        var mimeType: String
        var fileExtension: String
        var maxBytes: Int
    }

    static let anythingLimit = 100 * 1024 * 1024

    /// The kind of a file from its first bytes: images up to 10 MB, videos up to 50 MB, anything else up to 100 MB.
    static func sniff(_ head: [UInt8]) -> Kind {
        func starts(_ bytes: [UInt8], at offset: Int = 0) -> Bool {
            head.count >= offset + bytes.count && Array(head[offset..<offset + bytes.count]) == bytes
        }
        let image = 10 * 1024 * 1024
        let video = 50 * 1024 * 1024
        if starts([0xFF, 0xD8, 0xFF]) { return Kind(mimeType: "image/jpeg", fileExtension: "jpg", maxBytes: image) }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return Kind(mimeType: "image/png", fileExtension: "png", maxBytes: image) }
        if starts(Array("GIF8".utf8)) { return Kind(mimeType: "image/gif", fileExtension: "gif", maxBytes: image) }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) {
            return Kind(mimeType: "image/webp", fileExtension: "webp", maxBytes: image)
        }
        if starts(Array("ftypqt".utf8), at: 4) { return Kind(mimeType: "video/quicktime", fileExtension: "mov", maxBytes: video) }
        if starts(Array("ftyp".utf8), at: 4) { return Kind(mimeType: "video/mp4", fileExtension: "mp4", maxBytes: video) }
        if starts([0x1A, 0x45, 0xDF, 0xA3]) { return Kind(mimeType: "video/webm", fileExtension: "webm", maxBytes: video) }
        return Kind(mimeType: "application/octet-stream", fileExtension: "bin", maxBytes: anythingLimit)
    }

    /// A file being written; bytes are checked against the limit as they arrive.
    final class Writer {
        let url: URL
        private let handle: FileHandle
        private var head: [UInt8] = []
        private(set) var kind: Kind?
        private(set) var size = 0

        init(directory: URL) throws {
            url = directory.appendingPathComponent("upload-\(APIKeys.randomID())")
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
            handle = try FileHandle(forWritingTo: url)
        }

        func write(_ buffer: ByteBuffer) throws {
            size += buffer.readableBytes
            if kind == nil {
                head.append(contentsOf: buffer.readableBytesView.prefix(16 - head.count))
                if head.count >= 16 { kind = UploadStore.sniff(head) }
            }
            let limit = kind?.maxBytes ?? UploadStore.anythingLimit
            if size > limit { throw UploadStore.tooLarge(limit: limit, kind: kind) }
            try handle.write(contentsOf: buffer.readableBytesView)
        }

        /// Closes the file and settles its kind (short files are sniffed from what there is).
        func finish() throws -> Kind {
            try handle.close()
            let kind = self.kind ?? UploadStore.sniff(head)
            if size > kind.maxBytes { throw UploadStore.tooLarge(limit: kind.maxBytes, kind: kind) }
            return kind
        }

        func discard() {
            try? handle.close()
            try? FileManager.default.removeItem(at: url)
        }
    }

    static func tooLarge(limit: Int, kind: Kind?) -> APIError {
        let what = kind.map { $0.mimeType.hasPrefix("image/") ? "images" : $0.mimeType.hasPrefix("video/") ? "videos" : "files" } ?? "files"
        return APIError(code: 413, message: "file: too large; \(what) may be at most \(limit / 1024 / 1024) MB")
    }

    func writer() throws -> Writer {
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        return try Writer(directory: scratch)
    }

    /// The uploaded file as the Market contract answers it.
    struct Uploaded: Encodable, Sendable {
        var fileName: String
        var filePath: String
        var downloadUrl: String
        var fileSize: Int
        var mimeType: String
        var uploadedAt: String
    }

    /// Moves a finished upload into place for `account` and describes it.
    func commit(_ writer: Writer, account: Account, uploadPath: String, fileName: String?) throws -> Uploaded {
        let kind: Kind
        do {
            kind = try writer.finish()
        } catch {
            writer.discard()
            throw error
        }
        guard writer.size > 0 else {
            writer.discard()
            throw APIError.validation("file: is empty")
        }
        let folder = try Self.cleanPath(uploadPath, field: "uploadPath")
        let name = try fileName.map { try Self.cleanName($0) } ?? "\(APIKeys.randomID().prefix(16)).\(kind.fileExtension)"
        let relative = ["uploads", account.id] + folder + [name]
        let destination = root.deletingLastPathComponent().appendingPathComponent(relative.joined(separator: "/"))
        try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        // rename(2) replaces an existing file atomically: a repeated fileName overwrites.
        guard rename(writer.url.path, destination.path) == 0 else {
            writer.discard()
            throw APIError.internal("could not store the upload")
        }
        let now = Date()
        let expires = Int64(now.timeIntervalSince1970) + retention.milliseconds / 1000
        let artifactPath = relative.joined(separator: "/")
        return Uploaded(
            fileName: name, filePath: (folder + [name]).joined(separator: "/"),
            downloadUrl: links.url(forArtifact: artifactPath, expires: expires), fileSize: writer.size, mimeType: kind.mimeType,
            uploadedAt: ISO8601DateFormatter().string(from: now))
    }

    /// Stores bytes already in memory (a base64 upload) the way a streamed upload is stored.
    func store(_ data: Data, account: Account, uploadPath: String, fileName: String?) throws -> Uploaded {
        let writer = try self.writer()
        do {
            try writer.write(ByteBuffer(data: data))
        } catch {
            writer.discard()
            throw error
        }
        return try commit(writer, account: account, uploadPath: uploadPath, fileName: fileName)
    }

    /// `uploadPath` as safe path components (letters, digits, `.`, `_`, `-`; no `..`; at most 8 levels).
    static func cleanPath(_ path: String, field: String) throws -> [String] {
        let parts = path.split(separator: "/").map(String.init).filter { !$0.isEmpty }
        guard !parts.isEmpty, parts.count <= 8 else { throw APIError.validation("\(field): must be a path of 1 to 8 folders, e.g. images/user-1") }
        for part in parts where !isSafe(part) {
            throw APIError.validation("\(field): \"\(part)\" may hold only letters, digits, '.', '_' and '-' (and not be . or ..)")
        }
        return parts
    }

    static func cleanName(_ name: String) throws -> String {
        guard isSafe(name) else {
            throw APIError.validation("fileName: may hold only letters, digits, '.', '_' and '-' (1-128 characters, not . or ..)")
        }
        return name
    }

    private static func isSafe(_ part: String) -> Bool {
        (1...128).contains(part.count) && part != "." && part != ".."
            && part.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0) }
    }
}
