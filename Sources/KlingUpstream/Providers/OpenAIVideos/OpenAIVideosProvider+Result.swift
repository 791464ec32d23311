import Foundation
import KlingAPI
import KlingCore
import KlingPreview

extension OpenAIVideosProvider {
    public func downloads(_ url: String) -> Bool { url.hasPrefix(Self.resultScheme) }

    /// Fetches the task's videos (from a configured server with its key, any other link through the safe fetcher)
    /// and makes the finished file: a single video as the server made it, unless the request has sound and the video
    /// has none (then the preview's track is laid under it); the shots of a multi-shot task joined with cuts on the
    /// shot boundaries (``ShotJoiner``).
    public func download(_ url: String, request: GenerationRequest, to file: URL, scratch: URL, maxBytes: Int) async throws {
        let (links, generations) = try OneShotGenerations.links(
            of: url, scheme: Self.resultScheme, request: request, engine: engineName, scratch: scratch)
        if links.count == 1 && !request.multiShot {
            try await fetch(links[0], to: file, maxBytes: maxBytes)
            guard request.hasAudio else { return }
            let facts = try await ResultProbe.probe(file, engine: engineName)
            guard !facts.hasAudio else { return }
            let piece = scratch.appendingPathComponent("shot-1.mp4")
            try? FileManager.default.removeItem(at: piece)
            try FileManager.default.moveItem(at: file, to: piece)
            try await joiner.join(
                [.init(file: piece, seconds: request.duration, hasAudio: false)], request: request, width: facts.width, height: facts.height,
                fps: profile.model?.fps ?? 24, scratch: scratch, into: file)
            return
        }
        var pieces: [ShotJoiner.Piece] = []
        var firstSize: (Int, Int)?
        for (index, link) in links.enumerated() {
            let piece = scratch.appendingPathComponent("shot-\(index + 1).mp4")
            try await fetch(link, to: piece, maxBytes: maxBytes)
            let facts = try await ResultProbe.probe(piece, engine: engineName)
            if firstSize == nil { firstSize = (facts.width, facts.height) }
            pieces.append(.init(file: piece, seconds: generations[index].duration, hasAudio: facts.hasAudio))
        }
        let size = profile.size(for: request).map { ($0.width, $0.height) } ?? firstSize ?? (1280, 720)
        try await joiner.join(pieces, request: request, width: size.0, height: size.1, fps: profile.model?.fps ?? 24, scratch: scratch, into: file)
    }

    /// One video into `file`: from a configured server with its key (private addresses allowed: the operator's
    /// setting), otherwise through the safe fetcher.
    private func fetch(_ link: String, to file: URL, maxBytes: Int) async throws {
        if let server = servers.first(where: { link.hasPrefix($0.baseURL + "/v1/videos/") }) {
            try await server.download(String(link.dropFirst(server.baseURL.count)), headers: authorization, to: file, maxBytes: maxBytes)
        } else {
            try await inputs.fetch(link, field: "\(engineName) result", maxBytes: maxBytes, to: file)
        }
    }
}
