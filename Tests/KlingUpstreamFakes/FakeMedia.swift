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

    /// Makes `NAME.mp4`: `seconds` of one flat colour at 320x240 and `fps`, with a tone when `audio` (a shot that is
    /// told apart from the next by scene detection).
    public static func colour(_ colour: String, seconds: Double, fps: Int = 16, audio: Bool, name: String, in directory: URL) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let video = directory.appendingPathComponent("\(name).mp4")
        var arguments = ["-f", "lavfi", "-i", "color=c=\(colour):size=320x240:rate=\(fps):duration=\(seconds)"]
        if audio { arguments += ["-f", "lavfi", "-i", "sine=frequency=440:duration=\(seconds)", "-c:a", "aac", "-shortest"] }
        try ffmpeg(arguments + ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", video.path])
        return video
    }

    /// Seconds into `video` where ffmpeg's scene detection sees a cut.
    public static func sceneCuts(_ video: URL, threshold: Double = 0.3) throws -> [Double] {
        let output = try tool(
            "ffmpeg", ["-v", "info", "-i", video.path, "-vf", "select='gt(scene,\(threshold))',showinfo", "-an", "-f", "null", "-"])
        return output.split(separator: "\n").compactMap { line in
            guard line.contains("Parsed_showinfo"), let range = line.range(of: "pts_time:") else { return nil }
            return Double(line[range.upperBound...].prefix { $0 == "." || $0.isNumber })
        }
    }

    /// ffprobe's duration of `file` in seconds and whether it has an audio stream.
    public static func probe(_ file: URL) throws -> (duration: Double, hasAudio: Bool, frames: Int) {
        let format = try tool("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", file.path])
        let streams = try tool("ffprobe", ["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", file.path])
        let frames = try tool(
            "ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file.path])
        return (
            Double(format.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, streams.contains("audio"),
            Int(frames.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        )
    }

    private static func tool(_ name: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [name] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
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
