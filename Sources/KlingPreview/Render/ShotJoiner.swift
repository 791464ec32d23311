import Foundation
import KlingAPI
import KlingCore

/// Makes the finished MP4 of a request from the generations of an engine that makes one shot at a time (a GPU
/// server): each piece held to its shot's exact number of frames (a model's `4n+1` frames lose the extra one, a short
/// piece holds its last frame) at one frame size and rate, joined with hard cuts exactly on the shot boundaries; with
/// sound, the pieces' own audio when every piece has some, otherwise the preview's audio track (``PreviewAudioTrack``)
/// laid under the picture.
public struct ShotJoiner: Sendable {
    /// ffmpeg executable. Default `ffmpeg`.
    public var ffmpeg: String
    /// The track laid under silent pieces.
    public var audio: PreviewAudioTrack
    /// x264 preset of the joined video. Default `veryfast` (the pieces are re-encoded once, at CRF 18).
    public var preset = "veryfast"

    public init(ffmpeg: String = "ffmpeg", espeak: String = "espeak-ng") {
        self.ffmpeg = ffmpeg
        audio = PreviewAudioTrack(espeak: espeak)
    }

    /// A piece and what is known of it.
    public struct Piece: Sendable {
        public var file: URL
        /// Seconds of the shot it makes.
        public var seconds: Int
        public var hasAudio: Bool

        public init(file: URL, seconds: Int, hasAudio: Bool) {
            self.file = file
            self.seconds = seconds
            self.hasAudio = hasAudio
        }
    }

    /// Writes `output` from `pieces` (one per shot, in order) at `width`x`height` and `fps`, with sound when `request`
    /// asks for it. `scratch` holds the audio track while it is made.
    public func join(_ pieces: [Piece], request: GenerationRequest, width: Int, height: Int, fps: Int, scratch: URL, into output: URL) async throws {
        guard !pieces.isEmpty else { throw EngineError.renderFailed("nothing to join") }
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let ownSound = request.hasAudio && pieces.allSatisfy(\.hasAudio)
        let bed = request.hasAudio && !ownSound ? try await audio.render(for: request, in: scratch) : nil
        var arguments = ["-nostdin", "-hide_banner", "-v", "error", "-y"]
        for piece in pieces { arguments += ["-i", piece.file.path] }
        if let bed { arguments += ["-i", bed.path] }
        var graph: [String] = []
        var concatInputs = ""
        for (index, piece) in pieces.enumerated() {
            let frames = piece.seconds * fps
            graph.append(
                "[\(index):v]fps=\(fps),scale=\(width):\(height):force_original_aspect_ratio=decrease,pad=\(width):\(height):(ow-iw)/2:(oh-ih)/2,"
                    + "setsar=1,tpad=stop_mode=clone:stop_duration=\(piece.seconds),trim=end_frame=\(frames),setpts=PTS-STARTPTS[v\(index)]")
            concatInputs += "[v\(index)]"
            if ownSound {
                graph.append("[\(index):a]aresample=48000,atrim=duration=\(piece.seconds),apad=whole_dur=\(piece.seconds),asetpts=PTS-STARTPTS[a\(index)]")
                concatInputs += "[a\(index)]"
            }
        }
        graph.append("\(concatInputs)concat=n=\(pieces.count):v=1:a=\(ownSound ? 1 : 0)[v]\(ownSound ? "[a]" : "")")
        arguments += ["-filter_complex", graph.joined(separator: ";"), "-map", "[v]"]
        if ownSound { arguments += ["-map", "[a]"] } else if bed != nil { arguments += ["-map", "\(pieces.count):a"] }
        let total = pieces.reduce(0) { $0 + $1.seconds }
        arguments += ["-c:v", "libx264", "-preset", preset, "-crf", "18", "-pix_fmt", "yuv420p", "-r", String(fps)]
        if request.hasAudio { arguments += ownSound ? ["-c:a", "aac", "-b:a", "128k"] : ["-c:a", "copy"] }
        arguments += ["-t", String(total), "-movflags", "+faststart", "-f", "mp4", output.path]
        let outcome = try await ProcessRunner.run(ffmpeg, arguments)
        guard outcome.succeeded else {
            throw EngineError.renderFailed("joining the shots failed: \(ProcessRunner.reason(outcome.standardError))")
        }
    }
}
