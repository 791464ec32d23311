import Foundation

/// A small real MP4 (with audio) and JPEG cover made once with ffmpeg, for fakes to serve as results.
public enum FakeMedia {
    /// Makes `result.mp4` (2 s, 320x240, 10 fps, AAC audio) and `cover.jpg` in `directory`.
    public static func make(in directory: URL) throws -> (video: URL, cover: URL) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let video = directory.appendingPathComponent("result.mp4")
        let cover = directory.appendingPathComponent("cover.jpg")
        try ffmpeg([
            "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10:duration=2", "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", video.path,
        ])
        try ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1", cover.path])
        return (video, cover)
    }

    private static func ffmpeg(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ffmpeg", "-y", "-loglevel", "error", "-threads", "1"] + arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NSError(domain: "FakeMedia", code: Int(process.terminationStatus), userInfo: [NSLocalizedDescriptionKey: "ffmpeg failed"])
        }
    }
}
