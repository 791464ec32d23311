import Foundation
import KlingUpstream
import Testing

/// ComfyUI workflow templates: the shipped ones load, and every broken one is refused with the file and the path.
@Suite struct ComfyUIWorkflowTemplateTests {
    static let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../workflows/comfyui").standardizedFileURL

    static let minimal = """
        {"name":"t","handles":["text-to-video"],"frame_rate":16,"frames":"4n+1","output":"3",
         "inputs":{"prompt":"1.text","frames":"2.length"},
         "workflow":{"1":{"class_type":"CLIPTextEncode","inputs":{"text":"","clip":["0",0]}},
                     "2":{"class_type":"EmptyHunyuanLatentVideo","inputs":{"width":64,"height":64,"length":9,"batch_size":1}},
                     "3":{"class_type":"SaveWEBM","inputs":{"images":["2",0],"filename_prefix":"t","codec":"vp9","fps":16,"crf":32}}}}
        """

    @Test func theShippedWanTemplatesLoad() throws {
        let templates = try ComfyUIWorkflowTemplate.loadAll(from: Self.shipped)
        #expect(templates.map(\.name) == ["wan2.2-i2v", "wan2.2-t2v"])
        let t2v = try #require(templates.last)
        #expect(t2v.handles == [.textToVideo] && t2v.frameRate == 16 && t2v.frames == .fourNPlusOne)
        #expect(t2v.inputs[.frames]?.description == "9.length" && t2v.output == "14")
        #expect(t2v.nodeClasses.contains("KSamplerAdvanced") && t2v.nodeClasses.contains("SaveVideo"))
        let i2v = try #require(templates.first)
        #expect(i2v.inputs[.firstFrame]?.description == "15.image" && i2v.nodeClasses.contains("WanImageToVideo"))
    }

    @Test func theShippedLTX2TemplateLoads() throws {
        let templates = try ComfyUIWorkflowTemplate.loadAll(from: Self.shipped.appendingPathComponent("ltx2"))
        let ltx = try #require(templates.first)
        #expect(templates.count == 1 && ltx.name == "ltx2-t2v" && ltx.frames == .eightNPlusOne && ltx.frameRate == 24)
        #expect(ltx.inputs[.steps]?.description == "7.steps" && ltx.nodeClasses.contains("SamplerCustomAdvanced"))
    }

    @Test func frameCountsFollowTheModelsRule() {
        #expect(ComfyUIWorkflowTemplate.FrameRule.fourNPlusOne.frames(seconds: 5, fps: 16) == 81)
        #expect(ComfyUIWorkflowTemplate.FrameRule.eightNPlusOne.frames(seconds: 5, fps: 24) == 121)
        #expect(ComfyUIWorkflowTemplate.FrameRule.fourNPlusOne.frames(seconds: 3, fps: 25) == 77)
        #expect(ComfyUIWorkflowTemplate.FrameRule.any.frames(seconds: 5, fps: 24) == 120)
    }

    @Test(arguments: [
        ("\"inputs\":{\"prompt\":\"1.text\"", "\"inputs\":{\"prompt\":\"9.text\"", "t.json: inputs.prompt: the graph has no node 9"),
        ("\"frames\":\"2.length\"", "\"frames\":\"2.frames\"", "t.json: inputs.frames: node 2 has no input frames"),
        ("\"frames\":\"2.length\"", "\"frame_count\":\"2.length\"",
            "t.json: inputs.frame_count: is not a canonical input (use prompt, negative_prompt, width, height, frames, fps, seed, steps, first_frame, last_frame)"),
        ("\"frames\":\"2.length\"", "\"frames\":\"2\"", "t.json: inputs.frames: must be \"NODE_ID.NAME\""),
        ("\"output\":\"3\"", "\"output\":\"7\"", "t.json: output: the graph has no node 7"),
        ("\"frames\":\"4n+1\"", "\"frames\":\"3n\"", "t.json: frames: must be 4n+1, 8n+1 or any"),
        ("\"frame_rate\":16", "\"frame_rate\":0", "t.json: frame_rate: must be a whole number of frames per second from 1 to 120"),
        ("[\"text-to-video\"]", "[\"text-to-video\",\"video-to-video\"]",
            "t.json: handles[1]: must be one of text-to-video, image-to-video, first-last-frame, audio"),
        ("[\"text-to-video\"]", "[\"image-to-video\"]", "t.json: inputs.first_frame: is required by the image-to-video handle"),
        ("\"prompt\":\"1.text\",", "", "t.json: inputs.prompt: is required"),
        ("\"class_type\":\"CLIPTextEncode\",", "", "t.json: workflow.1: must be a node with class_type and inputs"),
    ])
    func aBrokenTemplateIsRefusedNamingTheFileAndPath(_ original: String, _ broken: String, _ message: String) throws {
        #expect(Self.minimal.contains(original))
        let text = Self.minimal.replacingOccurrences(of: original, with: broken)
        let error = #expect(throws: ComfyUIWorkflowTemplate.Invalid.self) {
            try ComfyUIWorkflowTemplate.load(Data(text.utf8), from: "t.json")
        }
        #expect(error?.description == message)
    }

    @Test func aFolderWithTwoTemplatesOfOneNameOrNoneIsRefused() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("comfy-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(throws: ComfyUIWorkflowTemplate.Invalid(description: "\(folder.path): holds no workflow template (*.json)")) {
            try ComfyUIWorkflowTemplate.loadAll(from: folder)
        }
        try Data(Self.minimal.utf8).write(to: folder.appendingPathComponent("a.json"))
        try Data(Self.minimal.utf8).write(to: folder.appendingPathComponent("b.json"))
        #expect(throws: ComfyUIWorkflowTemplate.Invalid(description: "b.json: name: t is also the name of a.json")) {
            try ComfyUIWorkflowTemplate.loadAll(from: folder)
        }
    }

    @Test func nodeClassesAnInstanceLacksAreNamed() throws {
        let template = try ComfyUIWorkflowTemplate.load(Data(Self.minimal.utf8), from: "t.json")
        #expect(template.missingNodeClasses(known: ["CLIPTextEncode", "SaveWEBM"]) == ["EmptyHunyuanLatentVideo"])
        #expect(template.missingNodeClasses(known: template.nodeClasses).isEmpty)
    }
}
