import Foundation
import KlingAPI

/// One ComfyUI workflow a `comfyui` engine can run: a JSON file in `KLING_COMFYUI_WORKFLOWS`,
/// `{"name", "handles": [...], "workflow": {API-format graph}, "inputs": {...}, "output": "NODE_ID", "frame_rate": N,
/// "frames": "4n+1" | "8n+1" | "any"}`.
///
/// `inputs` maps canonical names to node inputs as `"NODE_ID.NAME"`. ``load(_:from:)`` checks every path against the
/// graph, so a template that could never run stops the server at start with a message naming the file and the path.
public struct ComfyUIWorkflowTemplate: Sendable, Hashable {
    /// What a template can make.
    public enum Capability: String, Sendable, Hashable, CaseIterable {
        case textToVideo = "text-to-video"
        case imageToVideo = "image-to-video"
        case firstLastFrame = "first-last-frame"
        /// The workflow makes the sound itself (otherwise the preview's track is laid under the video).
        case audio
    }

    /// The canonical values a template can take, each set on one node input.
    public enum Input: String, Sendable, Hashable, CaseIterable {
        case prompt, negativePrompt = "negative_prompt", width, height, frames, fps, seed, steps
        case firstFrame = "first_frame", lastFrame = "last_frame"
    }

    /// Which frame counts the model makes.
    public enum FrameRule: String, Sendable, Hashable {
        case fourNPlusOne = "4n+1", eightNPlusOne = "8n+1", any

        /// The frame count for `seconds` at `fps`: `fps × seconds + 1` for the `4n+1`/`8n+1` models (of their form
        /// when `fps × seconds` is a multiple of 4 or 8), exactly `fps × seconds` otherwise.
        public func frames(seconds: Int, fps: Int) -> Int {
            switch self {
            case .any: return fps * seconds
            case .fourNPlusOne: return (fps * seconds + 3) / 4 * 4 + 1
            case .eightNPlusOne: return (fps * seconds + 7) / 8 * 8 + 1
            }
        }
    }

    /// A node input: the node's id in the graph and the input's name.
    public struct InputPath: Sendable, Hashable, CustomStringConvertible {
        public var node: String
        public var name: String
        public var description: String { "\(node).\(name)" }
    }

    public var name: String
    public var handles: Set<Capability>
    /// The API-format graph: node id → `{class_type, inputs}`.
    public var workflow: [String: JSONValue]
    public var inputs: [Input: InputPath]
    /// The node whose output is the video.
    public var output: String
    public var frameRate: Int
    public var frames: FrameRule
    /// The file it was read from, for messages.
    public var file: String

    /// The class of every node, for checking against an instance's `/object_info`.
    public var nodeClasses: Set<String> {
        Set(workflow.values.compactMap { if case .object(let node) = $0, case .string(let type)? = node["class_type"] { type } else { nil } })
    }

    /// A template that refused to load, with the file and the path at fault.
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String

        public init(description: String) { self.description = description }
    }

    /// Reads and checks the template in `data`; `file` names it in errors.
    public static func load(_ data: Data, from file: String) throws(Invalid) -> ComfyUIWorkflowTemplate {
        func fail(_ path: String, _ problem: String) -> Invalid { Invalid(description: "\(file): \(path): \(problem)") }
        guard case .object(let top)? = JSONValue.parse(data) else { throw Invalid(description: "\(file): not a JSON object") }
        guard case .string(let name)? = top["name"], !name.isEmpty else { throw fail("name", "is required (a non-empty string)") }
        guard case .array(let handleValues)? = top["handles"], !handleValues.isEmpty else {
            throw fail("handles", "is required (a list of \(Capability.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var handles: Set<Capability> = []
        for (index, value) in handleValues.enumerated() {
            guard case .string(let text) = value, let capability = Capability(rawValue: text) else {
                throw fail("handles[\(index)]", "must be one of \(Capability.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            handles.insert(capability)
        }
        guard case .object(let workflow)? = top["workflow"], !workflow.isEmpty else {
            throw fail("workflow", "is required (the API-format graph: {\"NODE_ID\": {\"class_type\", \"inputs\"}})")
        }
        for (id, node) in workflow.sorted(by: { $0.key < $1.key }) {
            guard case .object(let fields) = node, case .string? = fields["class_type"], case .object? = fields["inputs"] else {
                throw fail("workflow.\(id)", "must be a node with class_type and inputs")
            }
        }
        guard case .object(let inputValues)? = top["inputs"] else { throw fail("inputs", "is required (canonical name: \"NODE_ID.NAME\")") }
        var inputs: [Input: InputPath] = [:]
        for (key, value) in inputValues.sorted(by: { $0.key < $1.key }) {
            guard let input = Input(rawValue: key) else {
                throw fail("inputs.\(key)", "is not a canonical input (use \(Input.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard case .string(let text) = value, let dot = text.firstIndex(of: "."), dot != text.startIndex, text.index(after: dot) != text.endIndex else {
                throw fail("inputs.\(key)", "must be \"NODE_ID.NAME\"")
            }
            let path = InputPath(node: String(text[..<dot]), name: String(text[text.index(after: dot)...]))
            guard case .object(let node)? = workflow[path.node] else { throw fail("inputs.\(key)", "the graph has no node \(path.node)") }
            guard case .object(let nodeInputs)? = node["inputs"], nodeInputs[path.name] != nil else {
                throw fail("inputs.\(key)", "node \(path.node) has no input \(path.name)")
            }
            inputs[input] = path
        }
        if inputs[.prompt] == nil { throw fail("inputs.prompt", "is required") }
        if handles.contains(.imageToVideo) || handles.contains(.firstLastFrame), inputs[.firstFrame] == nil {
            throw fail("inputs.first_frame", "is required by the \(handles.contains(.firstLastFrame) ? "first-last-frame" : "image-to-video") handle")
        }
        if handles.contains(.firstLastFrame), inputs[.lastFrame] == nil { throw fail("inputs.last_frame", "is required by the first-last-frame handle") }
        guard case .string(let output)? = top["output"] else { throw fail("output", "is required (the id of the node that saves the video)") }
        guard workflow[output] != nil else { throw fail("output", "the graph has no node \(output)") }
        guard case .number(let rate)? = top["frame_rate"], rate >= 1, rate <= 120, rate == rate.rounded() else {
            throw fail("frame_rate", "must be a whole number of frames per second from 1 to 120")
        }
        guard case .string(let rule)? = top["frames"], let frames = FrameRule(rawValue: rule) else {
            throw fail("frames", "must be 4n+1, 8n+1 or any")
        }
        return ComfyUIWorkflowTemplate(
            name: name, handles: handles, workflow: workflow, inputs: inputs, output: output, frameRate: Int(rate), frames: frames, file: file)
    }

    /// Every `*.json` template in `directory`, by file name; the first one that does not load stops the load.
    public static func loadAll(from directory: URL) throws(Invalid) -> [ComfyUIWorkflowTemplate] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }.sorted()
        } catch {
            throw Invalid(description: "\(directory.path): cannot be read as a folder of workflow templates")
        }
        var templates: [ComfyUIWorkflowTemplate] = []
        for name in names {
            let file = directory.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: file.path) else { throw Invalid(description: "\(name): cannot be read") }
            let template = try load(data, from: name)
            if let twin = templates.first(where: { $0.name == template.name }) {
                throw Invalid(description: "\(name): name: \(template.name) is also the name of \(twin.file)")
            }
            templates.append(template)
        }
        if templates.isEmpty { throw Invalid(description: "\(directory.path): holds no workflow template (*.json)") }
        return templates
    }

    /// The node classes of this template that an instance's `/object_info` does not list (empty when it can run there).
    public func missingNodeClasses(known: Set<String>) -> [String] { nodeClasses.subtracting(known).sorted() }
}
