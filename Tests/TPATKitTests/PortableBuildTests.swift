import Foundation
import Testing

@testable import TPATKit

/// Without a GPU to read the arch from (or with `--arch all`), TPAT builds one fatbin for every
/// GPU TensorRT 10/11 runs on instead of refusing.
@Suite("portable build", .serialized)
struct PortableBuildTests {
    @Test("--arch all: kernels for sm_75, Makefile and CMakeLists build every major arch")
    func allArchitectures() throws {
        let dir = try TestSupport.temporaryDirectory()
        let out = dir.appendingPathComponent("out")
        let result = try TestSupport.runTPAT([
            "generate", try TestSupport.demoModel().path, "-o", out.path, "--arch", "all", "-q", "--no-build", "--op-types", "Softmax",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let makefile = try String(contentsOf: out.appendingPathComponent("Makefile"), encoding: .utf8)
        #expect(makefile.contains("CUDA_ARCH ?= all-major\n"))
        let plugin = out.appendingPathComponent("plugins/tpat_head_softmax")
        let cmake = try String(contentsOf: plugin.appendingPathComponent("CMakeLists.txt"), encoding: .utf8)
        #expect(cmake.contains("set(CMAKE_CUDA_ARCHITECTURES all-major)"))
        let manifest = try JSONDecoder().decode(KernelManifest.self, from: Data(contentsOf: plugin.appendingPathComponent("manifest.json")))
        #expect(manifest.target.arch == Toolchain.portableKernelArch)
    }
}
