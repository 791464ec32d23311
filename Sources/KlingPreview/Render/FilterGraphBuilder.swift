import Foundation

/// Builds the ffmpeg invocations that render a preview's video: its frames split over two processes, the first also
/// writing the cover (the audio track is ``AudioGraphBuilder``'s).
///
/// The video is built to an exact frame count by construction: every shot is rendered to whole frames and the pieces
/// are concatenated, so cuts fall exactly on shot boundaries. A first/last dissolve cross-fades only the short overlapping
/// pieces (never whole streams). File names in the video graph are relative to a link in the working directory
/// (``scratchLink``), so no path needs escaping there; caption text comes from files (`textfile=` with
/// `expansion=none`), so prompts need no escaping either.
struct FilterGraphBuilder: Sendable {
    /// An image input: a file in the scratch folder and the ffmpeg demuxer that reads it.
    struct Still: Sendable, Hashable {
        var file: String
        var demuxer: String
    }

    /// A run of frames of one shot (frame numbers counted from the shot's start): what one render process draws of it.
    struct ShotPiece: Sendable, Hashable {
        var shot: Int
        var frames: Range<Int>
    }

    /// An element overlaid (with its name) in the shots that mention it: a reference image, or a video's frames.
    struct ElementOverlay: Sendable, Hashable {
        enum Source: Sendable, Hashable {
            /// Reference images, first one large (at most four are drawn).
            case images([Still])
            /// A video file, looped for as long as a shot lasts.
            case video(file: String)
        }

        var source: Source
        /// Text file holding the element's name.
        var labelFile: String
        /// Indices of the shots that show it.
        var shots: [Int]
    }

    var size: FrameSize
    var plan: ShotPlan
    var looks: [PreviewLook]
    /// Camera motion per shot (used where a shot shows a still image).
    var moves: [CameraMove]
    /// Caption text file per shot.
    var captionFiles: [String]
    /// Text file of the fixed "KlingKit preview" label.
    var labelFile: String
    /// Font for all text; `nil` lets fontconfig pick its default sans.
    var fontFile: String?
    var firstFrame: Still?
    var lastFrame: Still?
    var elements: [ElementOverlay] = []
    var preset: String
    var threads: Int
    /// ffmpeg's `-cpuflags` value, if any.
    var cpuFlags: String? = nil

    static let fps = 24

    /// The link, in an ffmpeg process's working directory, to the render's scratch folder: every file name in a video
    /// graph and its arguments is relative to it (``FFmpegPool`` points it at the folder when the render starts).
    static let scratchLink = "s"

    /// One ffmpeg process's share of the video: the filter graph (read from standard input) and the inputs it needs on
    /// the command line.
    struct VideoGraph: Sendable {
        /// Input options: only a video element's looped file; images are `movie` sources in the graph.
        var inputs: [String]
        var graph: String
    }

    /// The filter graph for one ffmpeg process that renders the video of `pieces` (consecutive runs of shot frames,
    /// concatenated, cut exactly on shot boundaries) to the output `[v]` and, with `cover`, the first piece's first
    /// frame to `[cover]`.
    ///
    /// The video's frames are split over two processes side by side (``groups(count:)``). The audio renders
    /// alongside in process (``AudioGraphBuilder``), and ``MP4Joiner`` joins the pieces
    /// by stream copy: in one process the AAC encoder would run on the thread that also runs the filter graph and feeds
    /// x264, which made a 720p render a quarter slower than the join costs.
    ///
    /// Images are read by `movie` sources in the graph (with the 24 fps an `-i` input of them would have, so the output
    /// is the same to the byte), which lets ``FFmpegPool`` start the process before the render's files exist. A video
    /// element stays an `-i` input: `movie` loops a file with timestamps that restart (and, looping without end, ran
    /// away after the graph had all its frames).
    func videoGraph(pieces: [ShotPiece], cover: Bool) -> VideoGraph {
        var inputs: [String] = []
        var sources: [String] = []
        var inputCount = 0
        func addInput(_ options: [String]) -> String {
            inputs += options
            defer { inputCount += 1 }
            return "\(inputCount):v"
        }
        func addStill(_ still: Still) -> String {
            let label = "image\(sources.count)"
            sources.append(
                "movie=filename=\(path(still.file)):f=\(still.demuxer):format_opts=framerate=\(Self.fps)[\(label)]")
            return label
        }
        let shown = elementsShown()
        var chains = elementChains(pieces: pieces, shown: shown, addInput: addInput, addStill: addStill)
        var shotOutputs: [String] = []
        for piece in pieces {
            let (shotChains, output) = self.shotChains(piece, shown: shown[piece.shot], addStill: addStill)
            chains += shotChains
            shotOutputs.append(output)
        }
        let joined =
            shotOutputs.count == 1
            ? "[\(shotOutputs[0])]null," : shotOutputs.map { "[\($0)]" }.joined() + "concat=n=\(shotOutputs.count):v=1:a=0,"
        chains.append(joined + "format=yuv420p" + (cover ? ",split=2[v][coversource]" : "[v]"))
        if cover {
            // The cover is frame 0 through a one-frame trim branch (no select: that lets frames pile up in split).
            chains.append("[coversource]trim=end_frame=1,scale=out_range=full,format=yuvj420p[cover]")
        }
        return VideoGraph(inputs: inputs, graph: (sources + chains).joined(separator: ";\n"))
    }

    /// Arguments (without progress options) for an ffmpeg process that reads its filter graph from standard input,
    /// takes `inputs` (``VideoGraph/inputs``), and encodes `[v]` as the H.264 MP4 `video` and, given `cover`, `[cover]`
    /// as the JPEG cover. With `faststart` the index goes first. Output names are relative to the working directory.
    func videoArguments(inputs: [String], video: String, cover: String?, faststart: Bool) -> [String] {
        var outputs = [
            "-map", "[v]", "-c:v", "libx264", "-preset", preset, "-crf", "23", "-pix_fmt", "yuv420p", "-threads", "\(threads)",
            "-flags:v", "+bitexact", "-fflags", "+bitexact", "-map_metadata", "-1",
        ]
        outputs += (faststart ? ["-movflags", "+faststart"] : []) + ["-f", "mp4", video]
        if let cover {
            outputs += [
                "-map", "[cover]", "-c:v", "mjpeg", "-q:v", "3", "-flags:v", "+bitexact", "-fflags", "+bitexact",
                "-map_metadata", "-1", "-f", "mjpeg", cover,
            ]
        }
        // -xerror: an input that does not decode stops the render (the engine then names the image at fault).
        // -filter_complex_threads 1: the graph's filters do not slice-thread. The two video processes and the audio
        // already fill the cores; slices handed between threads of each process only made them wait on each other.
        return ["-nostdin", "-hide_banner", "-v", "error", "-xerror", "-y"] + cpuFlagsArguments + inputs
            + ["-filter_complex_threads", "1", "-filter_complex_script", "/dev/stdin"] + outputs
    }

    /// `file` (in the scratch folder) as the video graph names it.
    private func path(_ file: String) -> String { Self.scratchLink + "/" + file }

    /// Chains drawing `piece` of its shot to exactly its frame count, with the shot's caption and the preview label;
    /// returns the chains and the label of their output. Every label inside is prefixed with the shot's, so shots share
    /// one graph.
    ///
    /// Inside, frames carry their number in the shot as timestamp (time base 1/24), so a piece draws exactly what the
    /// same frames of the whole shot would show: moving shapes and camera motion are functions of that number.
    private func shotChains(_ piece: ShotPiece, shown: [Int], addStill: (Still) -> String) -> (chains: [String], output: String) {
        let index = piece.shot
        let shot = plan.shots[index]
        let range = piece.frames
        let single = plan.shots.count == 1
        let tag = "s\(index)"
        let firstInput = index == 0 ? firstFrame.map(addStill) : nil
        let lastInput = index == plan.shots.count - 1 ? lastFrame.map(addStill) : nil
        var chains: [String] = []
        var segment: String
        if let firstInput, let lastInput, single {
            chains += dissolveChains(first: firstInput, last: lastInput, frames: shot.frames, move: moves[index], tag: tag)
            // The dissolve is drawn whole (its two stills overlap in the middle) and cut to the piece.
            segment =
                "[\(tag)dissolved]"
                + (range == 0..<shot.frames
                    ? "null"
                    : "trim=start_frame=\(range.lowerBound):end_frame=\(range.upperBound),settb=1/\(Self.fps),setpts=N+\(range.lowerBound)")
        } else if let firstInput {
            segment = stillClip(input: firstInput, frames: shot.frames, range: range, move: moves[index], reversed: false)
        } else if let lastInput, !single {
            // Several shots and a last image: the last shot moves to rest on it.
            segment = stillClip(input: lastInput, frames: shot.frames, range: range, move: moves[index], reversed: true)
        } else {
            chains += colourClip(look: looks[index], frames: range, tag: tag)
            segment = "[\(tag)colour]null"
        }
        if !shown.isEmpty {
            chains.append("\(segment)[\(tag)bare]")
            var current = "\(tag)bare"
            for (slot, element) in shown.enumerated() {
                let next = "\(tag)el\(slot)"
                chains.append(
                    "[\(current)][el\(element)for\(index)]overlay=x=W-w-\(margin):y=\(margin + slot * (elementSlotHeight + margin))"
                        + ":eof_action=repeat[\(next)]")
                current = next
            }
            segment = "[\(current)]null"
        }
        let labelSize = max(14, size.height / 40)
        chains.append(
            "\(segment),\(captionFilter(file: captionFiles[index])),"
                + "drawtext=\(font):textfile=\(path(labelFile)):expansion=none:fontcolor=white@0.85:fontsize=\(labelSize)"
                + ":x=\(labelSize):y=\(labelSize):box=1:boxcolor=black@0.4:boxborderw=\(labelSize / 3),"
                + "trim=end_frame=\(range.count),setpts=PTS-STARTPTS,format=yuv420p[\(tag)v]")
        return (chains, "\(tag)v")
    }

    /// Splits the video's frames into `count` (at least one) consecutive runs of about equal length, one per render
    /// process, each as the pieces of the shots it spans. A run ends on the shot boundary nearest its ideal end when one
    /// is within half a second of it (a shot split between two processes has its still decoded and fitted, and its text
    /// set up, twice); otherwise it splits that shot.
    func groups(count: Int) -> [[ShotPiece]] {
        let total = plan.totalFrames
        let count = max(1, min(count, total))
        let boundaries = plan.shots.dropFirst().map(\.startFrame)
        var cuts = [0]
        for group in 1..<count {
            let ideal = total * group / count
            let nearest = boundaries.filter { $0 > cuts.last! }.min { abs($0 - ideal) < abs($1 - ideal) }
            let cut = nearest.map { abs($0 - ideal) <= Self.fps / 2 ? $0 : ideal } ?? ideal
            // Every run keeps at least one frame.
            cuts.append(min(max(cut, cuts.last! + 1), total - (count - group)))
        }
        cuts.append(total)
        return (0..<count).map { group in
            let run = cuts[group]..<cuts[group + 1]
            return plan.shots.indices.compactMap { index in
                let shot = plan.shots[index]
                let start = max(run.lowerBound, shot.startFrame), end = min(run.upperBound, shot.startFrame + shot.frames)
                return start < end ? ShotPiece(shot: index, frames: (start - shot.startFrame)..<(end - shot.startFrame)) : nil
            }
        }
    }

    // MARK: - Video pieces

    private var font: String { fontFile.map { "fontfile=\(Self.escape($0))" } ?? "font=Sans" }
    private var margin: Int { max(8, size.height / 30) / 2 * 2 }

    /// Frames `frames` of a generated shot: the look's background with three shapes moving across it, labelled
    /// `[<tag>colour]`.
    ///
    /// The shapes are overlaid sources: overlay evaluates its position per frame with `t` as the time (in drawbox, `t`
    /// is the box's thickness, so drawbox shapes cannot move). Each shape is one frame held by overlay
    /// (`eof_action=repeat`) and everything stays yuv420p: a shape source generating every frame, negotiated to
    /// yuva420p, cost 8 times as much per frame as the whole rest of the graph.
    private func colourClip(look: PreviewLook, frames: Range<Int>, tag: String) -> [String] {
        let w = size.width, h = size.height
        let speedX = look.speedX * w / 1280, speedY = look.speedY * h / 720
        // Opaque shapes in colours pre-blended with the background: overlay then copies pixels instead of blending.
        func shape(_ colour: String, _ width: Double, _ height: Double, _ label: String) -> String {
            "color=c=\(colour):s=\(Self.even(Double(width)))x\(Self.even(Double(height))):r=\(Self.fps),format=yuv420p,trim=end_frame=1"
                + "[\(tag)\(label)]"
        }
        let moving = ":eof_action=repeat:format=yuv420"
        return [
            "color=c=\(look.background):s=\(w)x\(h):r=\(Self.fps),format=yuv420p,"
                + "trim=start_frame=\(frames.lowerBound):end_frame=\(frames.upperBound)[\(tag)colourbg]",
            shape(PreviewLook.blend(look.accent, over: look.background, opacity: 0.9), Double(w) / 5, Double(h) / 5, "shapea"),
            shape(PreviewLook.blend(look.accent, over: look.background, opacity: 0.6), Double(w) / 9, Double(h) / 9, "shapeb"),
            shape(PreviewLook.blend("0xffffff", over: look.background, opacity: 0.5), Double(h) / 12, Double(h) / 12, "shapec"),
            "[\(tag)colourbg][\(tag)shapea]overlay=x='mod(t*\(speedX)+W/3,W+w)-w':y='H/4+mod(t*\(speedY),H/2)'\(moving)[\(tag)coloura]",
            "[\(tag)coloura][\(tag)shapeb]overlay=x='W-mod(t*\(speedY * 2),W+w)':y=H/8\(moving)[\(tag)colourb]",
            "[\(tag)colourb][\(tag)shapec]overlay=x='W/2+W/3*sin(t*\(look.speedX % 5 + 1)/3)':y='H*3/5+H/8*cos(t)'\(moving)[\(tag)colour]",
        ]
    }

    /// A still image fitted to the frame at its aspect (black bars where the aspects differ), moved by the shot's
    /// camera for `frames` frames: starting at rest on the whole image (so the shot opens on it) or, `reversed`,
    /// arriving at rest on it (so the video ends on it). Motion is eased in and out. Only the frames in `range` are drawn
    /// (all by default).
    private func stillClip(input: String, frames: Int, range: Range<Int>? = nil, move: CameraMove, reversed: Bool) -> String {
        let range = range ?? 0..<frames
        let w = size.width, h = size.height
        let fit =
            "[\(input)]scale=\(w):\(h):force_original_aspect_ratio=decrease:force_divisible_by=2,"
            + "pad=\(w):\(h):(ow-iw)/2:(oh-ih)/2:color=black,setsar=1"
        if move == .still {
            // Decoded once and held: no per-frame work before the encoder.
            let cut = range == 0..<frames ? "" : ",trim=start_frame=\(range.lowerBound):end_frame=\(range.upperBound)"
            return fit + ",format=yuv420p,tpad=stop_mode=clone:stop=\(frames - 1),settb=1/\(Self.fps),setpts=N" + cut
        }
        let canvasWidth = Self.even(Double(w) * move.canvasScale), canvasHeight = Self.even(Double(h) * move.canvasScale)
        let canvas = move.canvasScale > 1 ? ",pad=\(canvasWidth):\(canvasHeight):(ow-iw)/2:(oh-ih)/2:color=black" : ""
        let last = max(1, frames - 1)
        // zoompan counts its output frames in `on`; a piece starting later in the shot adds its first frame's number.
        let on = range.lowerBound == 0 ? "on" : "(on+\(range.lowerBound))"
        let p = reversed ? "(1-\(on)/\(last))" : "(\(on)/\(last))"
        let eased = "(\(p)*\(p)*(3-2*\(p)))"
        let zoom = move.zoom(eased)
        let offset = move.offset(zoom: zoom, progress: p, eased: eased)
        // zoompan's zoom is relative to the canvas; the image fills w x h of it.
        let canvasZoom = String(format: "%.6f", Double(canvasWidth) / Double(w))
        return fit + canvas + ",format=yuv420p,"
            + "zoompan=z='\(canvasZoom)*\(zoom)':x='iw/2+\(offset.x)*\(w)-iw/zoom/2':y='ih/2+\(offset.y)*\(h)-ih/zoom/2'"
            + ":d=\(range.count):s=\(w)x\(h):fps=\(Self.fps),settb=1/\(Self.fps),setpts=N" + (range.lowerBound == 0 ? "" : "+\(range.lowerBound)")
    }

    /// The first image moving away from rest, a cross-dissolve in the middle, and the last image moving to rest at the
    /// end. Only the `fade`-frame overlap goes through xfade; the rest is concatenated. Output label: `<tag>dissolved`.
    private func dissolveChains(first: String, last: String, frames: Int, move: CameraMove, tag: String) -> [String] {
        let fade = frames >= 72 ? 24 : 12
        let cut = (frames - fade) / 2
        return [
            stillClip(input: first, frames: cut + fade, move: move, reversed: false) + ",split=2[\(tag)firsta][\(tag)firstb]",
            "[\(tag)firsta]trim=end_frame=\(cut)[\(tag)firsthead]",
            "[\(tag)firstb]trim=start_frame=\(cut),setpts=PTS-STARTPTS[\(tag)firsttail]",
            stillClip(input: last, frames: frames - cut, move: move, reversed: true) + ",split=2[\(tag)lasta][\(tag)lastb]",
            "[\(tag)lasta]trim=end_frame=\(fade)[\(tag)lasthead]",
            "[\(tag)lastb]trim=start_frame=\(fade),setpts=PTS-STARTPTS[\(tag)lastbody]",
            "[\(tag)firsttail][\(tag)lasthead]xfade=transition=fade:duration=\(Self.seconds(fade)):offset=0[\(tag)crossfade]",
            "[\(tag)firsthead][\(tag)crossfade][\(tag)lastbody]concat=n=3:v=1:a=0[\(tag)dissolved]",
        ]
    }

    private func captionFilter(file: String) -> String {
        let fontSize = CaptionText.fontSize(height: size.height)
        return "drawtext=\(font):textfile=\(path(file)):expansion=none:fontcolor=white:fontsize=\(fontSize)"
            + ":line_spacing=\(fontSize / 4):x=(w-text_w)/2:y=h-text_h-\(size.height / 14)"
            + ":box=1:boxcolor=black@0.55:boxborderw=\(fontSize / 2)"
    }

    // MARK: - Elements

    private var elementThumb: Int { Self.even(Double(size.height) / 6) }
    private var elementLabelSize: Int { max(12, size.height / 45) }
    private var elementBorder: Int { max(2, size.height / 360) }
    private var elementLabelHeight: Int { Self.even(Double(elementLabelSize) * 1.6) }
    private var elementSlotHeight: Int { elementThumb + elementLabelHeight + 2 * elementBorder }
    /// Element slots down the right edge, keeping clear of the caption.
    private var maxElementSlots: Int { max(1, (size.height * 13 / 20 - margin) / (elementSlotHeight + margin)) }

    /// The image files the render draws: the first and last frames and the references of every element shown.
    var drawnFiles: Set<String> {
        var files = Set([firstFrame, lastFrame].compactMap { $0?.file })
        for element in Set(elementsShown().joined()) {
            if case .images(let stills) = elements[element].source { files.formUnion(stills.prefix(4).map(\.file)) }
        }
        return files
    }

    /// For each shot, the elements it shows (in request order, as many as there are slots).
    private func elementsShown() -> [[Int]] {
        plan.shots.indices.map { shot in
            Array(elements.indices.filter { elements[$0].shots.contains(shot) }.prefix(maxElementSlots))
        }
    }

    /// Each element shown in the shots of `pieces` as a labelled card (`el<i>for<shot>`): its first reference image
    /// large with its name under it and any further references in a column beside it, built once and split over its
    /// shots; a video element's frames instead, per piece, cut to the piece's frames of the shot (numbered as in
    /// ``shotChains(_:shown:addStill:)``).
    private func elementChains(
        pieces: [ShotPiece], shown: [[Int]], addInput: (_ options: [String]) -> String, addStill: (Still) -> String
    ) -> [String] {
        let b = elementBorder, t = elementThumb, label = elementLabelHeight
        let cardHeight = t + label + 2 * b
        let tile = max(2, cardHeight / 3 / 2 * 2)
        let dark = "0x101010"
        func card(_ index: Int) -> String {
            "scale=\(t):\(t):force_original_aspect_ratio=decrease:force_divisible_by=2,setsar=1,format=yuv420p,"
                + "pad=\(t + 2 * b):\(cardHeight):(ow-iw)/2:\(b)+(\(t)-ih)/2:color=\(dark),"
                + "drawtext=\(font):textfile=\(path(elements[index].labelFile)):expansion=none:fontcolor=white"
                + ":fontsize=\(elementLabelSize):x=(w-text_w)/2:y=h-\(b + label)+(\(label)-text_h)/2"
        }
        var chains: [String] = []
        for index in elements.indices {
            let showing = pieces.filter { shown[$0.shot].contains(index) }
            guard !showing.isEmpty else { continue }
            switch elements[index].source {
            case .images(let stills):
                let outputs = showing.map { "[el\(index)for\($0.shot)]" }.joined()
                let inputs = stills.prefix(4).map(addStill)
                let extras = inputs.dropFirst()
                if extras.isEmpty {
                    chains.append("[\(inputs[0])]\(card(index)),split=\(showing.count)\(outputs)")
                    continue
                }
                // Further references as tiles in a column to the card's left, as tall as the card.
                for (number, input) in extras.enumerated() {
                    chains.append(
                        "[\(input)]scale=\(tile - 2 * b):\(tile - 2 * b):force_original_aspect_ratio=decrease:force_divisible_by=2,"
                            + "setsar=1,format=yuv420p,pad=\(tile):\(tile):(ow-iw)/2:(oh-ih)/2:color=\(dark)[el\(index)ref\(number)]")
                }
                let column = extras.indices.map { "[el\(index)ref\($0 - 1)]" }.joined()
                let stack = extras.count > 1 ? "vstack=inputs=\(extras.count)," : "null,"
                chains.append("\(column)\(stack)pad=\(tile + b):\(cardHeight):0:0:color=\(dark)[el\(index)column]")
                chains.append("[\(inputs[0])]\(card(index))[el\(index)card]")
                chains.append("[el\(index)column][el\(index)card]hstack=inputs=2,split=\(showing.count)\(outputs)")
            case .video(let file):
                for piece in showing {
                    let input = addInput(["-stream_loop", "-1", "-i", path(file)])
                    chains.append(
                        "[\(input)]fps=\(Self.fps),\(card(index)),"
                            + "trim=start_frame=\(piece.frames.lowerBound):end_frame=\(piece.frames.upperBound),"
                            + "setpts=N+\(piece.frames.lowerBound)[el\(index)for\(piece.shot)]")
                }
            }
        }
        return chains
    }

    // MARK: - Helpers

    private var cpuFlagsArguments: [String] { cpuFlags.map { ["-cpuflags", $0] } ?? [] }

    static func seconds(_ frames: Int) -> String {
        String(format: "%.6f", Double(frames) / Double(fps))
    }

    /// Escapes a filter option value twice: for the option parser (backslash, colon, quote), then for the graph
    /// parser (backslash, comma, semicolon, brackets, quote).
    static func escape(_ value: String) -> String {
        func escaping(_ text: String, _ special: Set<Character>) -> String {
            String(text.flatMap { special.contains($0) ? ["\\", $0] : [$0] })
        }
        return escaping(escaping(value, ["\\", ":", "'"]), ["\\", ",", ";", "[", "]", "'"])
    }

    /// Rounds to the nearest even number, at least 2.
    static func even(_ value: Double) -> Int { max(2, Int((value / 2).rounded()) * 2) }
}
