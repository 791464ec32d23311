import Foundation
import KlingCore

/// Fetches image and video inputs with the injected fetcher and checks them before anything is rendered: the format
/// is sniffed from the file's first bytes (never taken from a Content-Type header or the URL), the file must decode,
/// and images must be at least 300x300 px with an aspect between 1:2.5 and 2.5:1.
struct InputMedia: Sendable {
    /// A fetched, checked image.
    struct Image: Sendable, Hashable {
        /// File name inside the scratch directory.
        var file: String
        /// The ffmpeg demuxer for its format (`png_pipe` or `jpeg_pipe`).
        var demuxer: String
        var width: Int
        var height: Int

        var still: FilterGraphBuilder.Still { .init(file: file, demuxer: demuxer) }
    }

    /// A fetched, probed MP4 or MOV video.
    struct Video: Sendable, Hashable {
        var file: String
        var width: Int
        var height: Int
        var durationSeconds: Double
    }

    static let minimumImageSide = 300
    static let maximumAspect = 2.5

    var fetcher: any InputFetching
    var ffprobe: String
    var maxImageBytes: Int
    var maxVideoBytes: Int
    /// ffmpeg, for decoding every fetched image in one process.
    var ffmpeg = "ffmpeg"

    /// One input to fetch: an image or a video element, the request field it came from, and its scratch file name.
    struct Input: Sendable, Hashable {
        var url: String
        var field: String
        var name: String
        var isVideo = false
    }

    /// A fetched and checked input.
    enum Fetched: Sendable, Hashable {
        case image(Image)
        case video(Video)
    }

    /// Fetches and checks every input at once (downloads and probes overlap), returning them in order. When several
    /// fail, the error of the first in order is thrown, so the reason a task gives does not depend on timing.
    ///
    /// Images are checked from their headers here; whether they fully decode is left to ``checkImagesDecode(_:in:)``,
    /// which the renderer runs up front only for images it will not draw, and for the others only when a render
    /// fails (a render decodes them anyway: a second decode on every task would cost a process start-up).
    func fetchAll(_ inputs: [Input], into directory: URL) async throws -> [Fetched] {
        try await withThrowingTaskGroup(of: (Int, Result<Fetched, any Error>).self) { group in
            for (index, input) in inputs.enumerated() {
                group.addTask {
                    do {
                        if input.isVideo {
                            return (index, .success(.video(try await video(input.url, field: input.field, as: input.name, into: directory))))
                        }
                        return (index, .success(.image(try await image(input.url, field: input.field, as: input.name, into: directory))))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var results = [Result<Fetched, any Error>?](repeating: nil, count: inputs.count)
            for try await (index, result) in group { results[index] = result }
            try Task.checkCancellation()
            let fetched = try results.map { try $0!.get() }
            return fetched
        }
    }

    /// Decodes every image in one ffmpeg process (one start-up instead of one per image); when that fails, probes
    /// each image to name the one at fault and throws 422 naming its field.
    func checkImagesDecode(_ images: [(Input, Image)], in directory: URL) async throws {
        guard !images.isEmpty else { return }
        var arguments = ["-nostdin", "-v", "error", "-xerror"]
        for (_, image) in images { arguments += ["-f", image.demuxer, "-i", image.file] }
        for index in images.indices { arguments += ["-map", "\(index):v"] }
        let outcome = try await ProcessRunner.run(ffmpeg, arguments + ["-f", "null", "-"], in: directory)
        try Task.checkCancellation()
        guard !outcome.succeeded else { return }
        for (input, image) in images {
            try await probeImage(directory.appendingPathComponent(image.file), demuxer: image.demuxer, field: input.field, url: input.url)
        }
        throw EngineError.badInput("\(images.map(\.0.field).joined(separator: ", ")): the images could not all be decoded")
    }

    /// Downloads `url` to `name` in `directory`; anything but a usable JPEG or PNG throws 422 naming `field`.
    func image(_ url: String, field: String, as name: String, into directory: URL) async throws -> Image {
        let file = directory.appendingPathComponent(name)
        try await fetcher.fetch(url, field: field, maxBytes: maxImageBytes, to: file)
        try Self.checkSize(of: file, field: field, url: url, maxBytes: maxImageBytes)
        let magic = (try? Self.leadingBytes(of: file, count: 12)) ?? []
        guard let demuxer = Self.imageDemuxer(magic) else {
            throw EngineError.badInput("\(field): \(url) is not a JPEG or PNG image (judged by its content)")
        }
        // The size from the header, so the rules apply before any decoding; `fetchAll` then decodes every image.
        var size = Self.headerSize(of: file)
        if size == nil { size = try await probeImage(file, demuxer: demuxer, field: field, url: url) }
        guard let (width, height) = size else { throw EngineError.badInput("\(field): \(url) could not be decoded as an image") }
        try Self.checkDimensions(width: width, height: height, field: field, url: url)
        return Image(file: name, demuxer: demuxer, width: width, height: height)
    }

    /// Decodes the image with ffprobe, returning its size; 422 naming `field` when it does not decode.
    @discardableResult
    private func probeImage(_ file: URL, demuxer: String, field: String, url: String) async throws -> (Int, Int) {
        let probe = try await ProcessRunner.run(
            ffprobe,
            [
                "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=width,height,nb_read_frames",
                "-of", "csv=p=0", "-f", demuxer, "-i", file.path,
            ])
        let numbers = probe.standardOutput.split(whereSeparator: { $0 == "," || $0.isNewline }).compactMap { Int($0) }
        // width,height,decoded frames: the image must actually decode, not just have a readable header.
        guard probe.succeeded, numbers.count == 3, numbers[0] > 0, numbers[1] > 0, numbers[2] > 0 else {
            throw EngineError.badInput("\(field): \(url) could not be decoded as an image")
        }
        return (numbers[0], numbers[1])
    }

    /// Width and height from a PNG's IHDR chunk or a JPEG's start-of-frame segment; `nil` when the header is unusual.
    static func headerSize(of file: URL) -> (Int, Int)? {
        guard let data = try? Data(contentsOf: file) else { return nil }
        let bytes = [UInt8](data)
        func be16(_ at: Int) -> Int { Int(bytes[at]) << 8 | Int(bytes[at + 1]) }
        func be32(_ at: Int) -> Int { be16(at) << 16 | be16(at + 2) }
        if imageDemuxer(bytes) == "png_pipe" {
            guard bytes.count >= 24, bytes[12..<16].elementsEqual("IHDR".utf8) else { return nil }
            let size = (be32(16), be32(20))
            return size.0 > 0 && size.1 > 0 ? size : nil
        }
        var offset = 2
        while offset + 4 <= bytes.count {
            guard bytes[offset] == 0xFF else { return nil }
            let marker = bytes[offset + 1]
            if marker == 0xFF {
                offset += 1
                continue
            }
            if marker == 0x01 || (0xD0...0xD8).contains(marker) {
                offset += 2
                continue
            }
            let length = be16(offset + 2)
            if (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker) {
                guard offset + 9 <= bytes.count else { return nil }
                let size = (be16(offset + 7), be16(offset + 5))
                return size.0 > 0 && size.1 > 0 ? size : nil
            }
            guard marker != 0xD9, marker != 0xDA, length >= 2 else { return nil }
            offset += 2 + length
        }
        return nil
    }

    /// Downloads a video element's `url`; anything but a decodable MP4 or MOV with a video stream throws 422.
    func video(_ url: String, field: String, as name: String, into directory: URL) async throws -> Video {
        let file = directory.appendingPathComponent(name)
        try await fetcher.fetch(url, field: field, maxBytes: maxVideoBytes, to: file)
        try Self.checkSize(of: file, field: field, url: url, maxBytes: maxVideoBytes)
        let magic = (try? Self.leadingBytes(of: file, count: 12)) ?? []
        guard Self.isISOMedia(magic) else {
            throw EngineError.badInput("\(field): \(url) is not an MP4 or MOV video (judged by its content)")
        }
        let probe = try await ProcessRunner.run(
            ffprobe,
            [
                "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height:format=duration,format_name",
                "-of", "default=noprint_wrappers=1", "-f", "mov", "-i", file.path,
            ])
        var values: [String: String] = [:]
        for line in probe.standardOutput.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        guard probe.succeeded, let width = values["width"].flatMap(Int.init), let height = values["height"].flatMap(Int.init),
            width > 0, height > 0, let duration = values["duration"].flatMap(Double.init), duration > 0
        else {
            throw EngineError.badInput("\(field): \(url) could not be decoded as a video")
        }
        return Video(file: name, width: width, height: height, durationSeconds: duration)
    }

    static func checkDimensions(width: Int, height: Int, field: String, url: String) throws {
        guard min(width, height) >= minimumImageSide else {
            throw EngineError.badInput(
                "\(field): \(url) is \(width)x\(height) px; images must be at least \(minimumImageSide)x\(minimumImageSide) px")
        }
        let aspect = Double(width) / Double(height)
        guard aspect <= maximumAspect, aspect >= 1 / maximumAspect else {
            throw EngineError.badInput(
                "\(field): \(url) is \(width)x\(height) px; the aspect ratio must be between 1:2.5 and 2.5:1")
        }
    }

    private static func checkSize(of file: URL, field: String, url: String, maxBytes: Int) throws {
        let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
        guard size <= maxBytes else {
            throw EngineError.badInput("\(field): \(url) is \(size) bytes, over the limit of \(maxBytes) bytes")
        }
    }

    /// The ffmpeg demuxer for a JPEG or PNG file's first bytes, or `nil` for anything else.
    static func imageDemuxer(_ bytes: [UInt8]) -> String? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "png_pipe" }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return "jpeg_pipe" }
        return nil
    }

    /// Whether the first bytes are an ISO base media (MP4) or QuickTime (MOV) box: a size, then a known box type.
    static func isISOMedia(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 8 else { return false }
        let type = String(decoding: bytes[4..<8], as: UTF8.self)
        return ["ftyp", "moov", "mdat", "wide", "free", "skip", "pnot"].contains(type)
    }

    private static func leadingBytes(of file: URL, count: Int) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        return [UInt8](try handle.read(upToCount: count) ?? Data())
    }
}
