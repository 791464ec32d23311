import Foundation
import KlingCore

/// Fetches image inputs with the injected fetcher and checks they are decodable JPEG or PNG files.
struct ImageFetcher: Sendable {
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

    var fetcher: any InputFetching
    var ffprobe: String
    var maxBytes: Int

    /// Downloads `url` to `name` in `directory`; a non-image or undecodable file throws 422 naming `field`.
    func fetch(_ url: String, field: String, as name: String, into directory: URL) async throws -> Image {
        let file = directory.appendingPathComponent(name)
        try await fetcher.fetch(url, field: field, maxBytes: maxBytes, to: file)
        let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
        guard size <= maxBytes else {
            throw EngineError.badInput("\(field): \(url) is \(size) bytes, over the limit of \(maxBytes) bytes")
        }
        guard let magic = try? Self.leadingBytes(of: file, count: 8), Self.isJPEG(magic) || Self.isPNG(magic) else {
            throw EngineError.badInput("\(field): \(url) is not a JPEG or PNG image")
        }
        let probe = try await ProcessRunner.run(
            ffprobe,
            [
                "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=width,height,nb_read_frames",
                "-of", "csv=p=0",
                "-f", Self.isPNG(magic) ? "png_pipe" : "jpeg_pipe", "-i", file.path,
            ])
        let numbers = probe.standardOutput.split(whereSeparator: { $0 == "," || $0.isNewline }).compactMap { Int($0) }
        // width,height,decoded frames: the image must actually decode, not just have a readable header.
        guard probe.succeeded, numbers.count == 3, numbers[0] > 0, numbers[1] > 0, numbers[2] > 0 else {
            throw EngineError.badInput("\(field): \(url) could not be decoded as an image")
        }
        return Image(file: name, demuxer: Self.isPNG(magic) ? "png_pipe" : "jpeg_pipe", width: numbers[0], height: numbers[1])
    }

    static func isPNG(_ bytes: [UInt8]) -> Bool { bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) }
    static func isJPEG(_ bytes: [UInt8]) -> Bool { bytes.starts(with: [0xFF, 0xD8, 0xFF]) }

    private static func leadingBytes(of file: URL, count: Int) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        return [UInt8](try handle.read(upToCount: count) ?? Data())
    }
}
