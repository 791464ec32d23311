import Foundation
import Testing

@testable import KlingPreview

/// Renders audio graphs in process and checks the M4A files with ffprobe.
@Suite("Rendering the audio track in process")
struct AudioRendererTests {
    @Test func aGraphBecomesStereoAACOfItsExactLength() async throws {
        let directory = try scratchDirectory("kling-audio")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("audio.m4a")
        // 2.5 s: not a whole number of 1024-sample AAC frames, so the last frame is short.
        try await AudioRenderer.render(
            graph: "sine=f=440:sample_rate=48000,atrim=end_sample=120000,aformat=sample_fmts=fltp:channel_layouts=stereo[a];[a]abuffersink",
            sampleRate: 48_000, to: output)
        let probe = try MediaProbe(output)
        #expect(probe.audioCodec == "aac")
        #expect(probe.audioChannels == 2)
        #expect(probe.sampleRate == 48_000)
        #expect(probe.streamCount == 1)
        #expect(abs(try #require(probe.audioDuration) - 2.5) < 1.0 / 48_000, "the encoder delay stays in the edit list")
        // Deterministic: the same graph writes the same bytes.
        let again = directory.appendingPathComponent("again.m4a")
        try await AudioRenderer.render(
            graph: "sine=f=440:sample_rate=48000,atrim=end_sample=120000,aformat=sample_fmts=fltp:channel_layouts=stereo[a];[a]abuffersink",
            sampleRate: 48_000, to: again)
        #expect(try Data(contentsOf: output) == Data(contentsOf: again))
    }

    @Test func theTrackCodesTheSpeechBandAndNothingAboveIt() async throws {
        let directory = try scratchDirectory("kling-audio")
        defer { try? FileManager.default.removeItem(at: directory) }
        var levels: [Int: Double] = [:]
        for frequency in [5_000, 14_000] {
            let output = directory.appendingPathComponent("\(frequency).m4a")
            try await AudioRenderer.render(
                graph: "sine=f=\(frequency):sample_rate=48000,atrim=end_sample=96000,aformat=sample_fmts=fltp:channel_layouts=stereo[a];"
                    + "[a]abuffersink",
                sampleRate: 48_000, to: output)
            levels[frequency] = try FrameStatistics.rmsLevel(output, from: 0.5, to: 1.5)
        }
        // The sine source is -24.1 dB RMS (astats of its PCM).
        let kept = try #require(levels[5_000]), cut = try #require(levels[14_000])
        #expect(abs(kept + 24.1) < 1, "5 kHz (inside espeak-ng's band) is kept: \(kept) dB")
        #expect(cut < kept - 40, "14 kHz (above AudioRenderer.bandwidth) is not coded: \(cut) dB")
    }

    @Test func aMissingSpeechFileOrABrokenGraphIsAnErrorNotACrash() async throws {
        let directory = try scratchDirectory("kling-audio")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("audio.m4a")
        let missing = directory.appendingPathComponent("missing.wav").path
        await #expect {
            try await AudioRenderer.render(graph: "amovie=filename=\(missing)[a];[a]abuffersink", sampleRate: 48_000, to: output)
        } throws: { error in
            error is AudioRenderer.Failure && "\(error)".contains("audio graph")
        }
        await #expect(throws: AudioRenderer.Failure.self) {
            try await AudioRenderer.render(graph: "sine=f=440[a];[a]nosuchfilter,abuffersink", sampleRate: 48_000, to: output)
        }
        await #expect(throws: AudioRenderer.Failure.self) {
            try await AudioRenderer.render(graph: "sine=f=440[a]", sampleRate: 48_000, to: output)
        }
    }
}
