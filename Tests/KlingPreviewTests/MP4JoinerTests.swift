import Foundation
import Testing

@testable import KlingPreview

/// Joins real ffmpeg output with libavformat and checks the result with ffprobe.
@Suite("Joining rendered pieces")
struct MP4JoinerTests {
    private func encode(_ source: String, frames: Int, to file: URL) throws {
        _ = try Tool.run(
            "ffmpeg",
            ["-v", "error", "-y", "-f", "lavfi", "-i", "\(source)=size=320x240:rate=24", "-frames:v", "\(frames)", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", file.path])
    }

    @Test func segmentsFollowEachOtherAndTheAudioKeepsItsExactLength() async throws {
        let directory = try scratchDirectory("kling-join")
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = directory.appendingPathComponent("a.mp4"), second = directory.appendingPathComponent("b.mp4")
        let audio = directory.appendingPathComponent("audio.m4a"), output = directory.appendingPathComponent("out.mp4")
        try encode("testsrc2", frames: 48, to: first)
        try encode("smptebars", frames: 24, to: second)
        _ = try Tool.run(
            "ffmpeg",
            ["-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000,atrim=end_sample=144000", "-ac", "2", "-c:a", "aac", "-f", "mp4", audio.path])
        try await MP4Joiner.join(segments: [first, second], audio: audio, into: output)

        let probe = try MediaProbe(output)
        #expect(probe.frames == 72)
        #expect(probe.videoDuration == 3.0)
        #expect(abs(try #require(probe.audioDuration) - 3.0) < 1.0 / 48_000, "the encoder delay stays in the edit list")
        // The second segment starts at frame 48: its bars differ from the test pattern's last frame.
        #expect(try FrameStatistics.ssim(output, frame: 47, against: 48) < 0.9)
        // The index comes first (faststart): the moov box precedes the mdat box.
        let head = try Data(contentsOf: output).prefix(4096)
        let moov = try #require(head.range(of: Data("moov".utf8)))
        #expect(head.range(of: Data("mdat".utf8)).map { moov.lowerBound < $0.lowerBound } ?? true)
    }

    @Test func aMissingPieceIsAnErrorNotACrash() async throws {
        let directory = try scratchDirectory("kling-join")
        defer { try? FileManager.default.removeItem(at: directory) }
        await #expect(throws: MP4Joiner.Failure.self) {
            try await MP4Joiner.join(
                segments: [directory.appendingPathComponent("missing.mp4")], audio: nil, into: directory.appendingPathComponent("out.mp4"))
        }
        let notVideo = directory.appendingPathComponent("text.mp4")
        try Data("not a video".utf8).write(to: notVideo)
        await #expect(throws: MP4Joiner.Failure.self) {
            try await MP4Joiner.join(segments: [notVideo], audio: nil, into: directory.appendingPathComponent("out.mp4"))
        }
    }
}
