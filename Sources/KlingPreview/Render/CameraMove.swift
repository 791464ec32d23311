import KlingAPI

/// The camera motion over a still image for one shot, read from the shot's prompt; deterministic.
///
/// Every move starts at rest on the whole image (zoom 1, centred), so a shot that opens on an image shows exactly
/// that image in its first frame; played backwards (``FilterGraphBuilder`` does so for a last frame), every move
/// ends at rest on the whole image.
enum CameraMove: Sendable, Hashable {
    case pushIn
    case pullBack
    case panLeft
    case panRight
    case tiltUp
    case tiltDown
    case orbit
    case still
    /// No camera words: a gentle push in drifting towards one side (each component -1, 0 or 1).
    case drift(x: Int, y: Int)

    /// Phrases that pick a move, checked in this order (the first phrase found in the prompt wins).
    static let phrases: [(String, CameraMove)] = [
        ("push in", .pushIn), ("pushes in", .pushIn), ("zoom in", .pushIn), ("zooms in", .pushIn), ("dolly in", .pushIn),
        ("pull back", .pullBack), ("pulls back", .pullBack), ("zoom out", .pullBack), ("zooms out", .pullBack),
        ("pull out", .pullBack), ("dolly out", .pullBack),
        ("pan left", .panLeft), ("pans left", .panLeft), ("pan right", .panRight), ("pans right", .panRight),
        ("tilt up", .tiltUp), ("tilts up", .tiltUp), ("tilt down", .tiltDown), ("tilts down", .tiltDown),
        ("orbit", .orbit), ("static", .still), ("locked-off", .still), ("still camera", .still),
    ]

    /// The move the prompt names (case-insensitive, earliest phrase in the prompt wins); otherwise a drift chosen
    /// from the prompt's hash.
    init(prompt: String) {
        let text = prompt.lowercased()
        var best: (position: String.Index, move: CameraMove)?
        for (phrase, move) in Self.phrases {
            if let range = text.range(of: phrase), best.map({ range.lowerBound < $0.position }) ?? true {
                best = (range.lowerBound, move)
            }
        }
        if let best {
            self = best.move
            return
        }
        let directions = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1), (0, 0)]
        let (x, y) = directions[Int((StableHash.fnv1a(prompt) >> 40) % UInt64(directions.count))]
        self = .drift(x: x, y: y)
    }

    /// The move a request names explicitly (Kling's `camera_control`).
    init(_ motion: GenerationRequest.CameraMotion) {
        switch motion {
        case .pushIn: self = .pushIn
        case .pullBack: self = .pullBack
        case .panLeft: self = .panLeft
        case .panRight: self = .panRight
        case .tiltUp: self = .tiltUp
        case .tiltDown: self = .tiltDown
        case .orbit: self = .orbit
        case .still: self = .still
        }
    }

    /// How much larger than the frame the canvas is: room for pulling back beyond the image's edges (shown black).
    var canvasScale: Double { self == .pullBack ? 1.25 : 1 }

    /// Zoom relative to the whole image (1 = the whole image fills the frame) at eased progress `e` (an expression).
    func zoom(_ e: String) -> String {
        switch self {
        case .pushIn: "(1+0.30*\(e))"
        case .pullBack: "(1/(1+0.25*\(e)))"
        case .panLeft, .panRight, .tiltUp, .tiltDown: "(1+0.18*\(e))"
        case .orbit: "(1+0.20*\(e))"
        case .still: "1"
        case .drift: "(1+0.08*\(e))"
        }
    }

    /// Offset of the view's centre from the image's centre, as fractions of the image's width and height, given the
    /// zoom expression `z` and progress `p` (0 to 1). Never shows beyond the image's edges when zoomed in.
    func offset(zoom z: String, progress p: String, eased e: String) -> (x: String, y: String) {
        let room = "((1-1/\(z))/2)"
        switch self {
        case .pushIn, .pullBack, .still: return ("0", "0")
        case .panLeft: return ("(-\(room))", "0")
        case .panRight: return (room, "0")
        case .tiltUp: return ("0", "(-\(room))")
        case .tiltDown: return ("0", room)
        case .orbit: return ("(0.9*\(room)*sin(2*PI*\(p)))", "(-0.9*\(room)*cos(2*PI*\(p)))")
        case .drift(let x, let y): return ("(\(x)*0.8*\(room))", "(\(y)*0.8*\(room))")
        }
    }
}
