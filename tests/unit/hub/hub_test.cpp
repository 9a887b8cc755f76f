// kite_hub pieces that need no server: hub id parsing, the cache's names and refs, digests, ETags.
// The download paths are tested end to end against a local Hub (tests/e2e/test_hub.py).
#include "hub/hub.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "hub/cache.h"
#include "hub/digest.h"
#include "hub/hub_api.h"
#include "hub/progress.h"
#include "hub/repo_ref.h"

namespace kite::hub {
namespace {
namespace fs = std::filesystem;

TEST(RepoRef, HubIdsAndPaths) {
  auto r = parse_repo_ref("Qwen/Qwen3-0.6B");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->repo_id, "Qwen/Qwen3-0.6B");
  EXPECT_EQ(r->filename, "");
  r = parse_repo_ref("unsloth/Qwen3-8B-GGUF:Q4_K_M");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->repo_id, "unsloth/Qwen3-8B-GGUF");
  EXPECT_EQ(r->quant_tag, "Q4_K_M");
  r = parse_repo_ref("org/name/sub/model-Q8_0.gguf");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->repo_id, "org/name");
  EXPECT_EQ(r->filename, "sub/model-Q8_0.gguf");
  for (const char* not_hub :
       {"/abs/path", "./rel", "../x/y", "~/m/n", "single", "a/b/c", "a--b/c", "a/b..c", "-a/b",
        "a/b-", "a/b:", "a\\b/c", "a/b/../x.gguf", "a b/c", ""}) {
    EXPECT_FALSE(parse_repo_ref(not_hub)) << not_hub;
  }
  // An existing local path is never a hub id, even when it looks like one.
  const fs::path dir = fs::temp_directory_path() / "kite-hub-test-org";
  fs::create_directories(dir / "name");
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.parent_path());
  EXPECT_FALSE(parse_repo_ref("kite-hub-test-org/name"));
  EXPECT_TRUE(parse_repo_ref("kite-hub-test-org/other"));
  fs::current_path(cwd);
  fs::remove_all(dir);
}

TEST(Cache, LayoutAsHuggingfaceHub) {
  EXPECT_EQ(repo_folder_name("meta-llama/Llama-3.1-8B"), "models--meta-llama--Llama-3.1-8B");
  const fs::path root = fs::temp_directory_path() / "kite-hub-cache-test";
  fs::remove_all(root);
  RepoCache cache(root.string(), "org/name");
  EXPECT_EQ(cache.repo_dir(), (root / "models--org--name").string());
  const std::string commit(40, 'a');
  EXPECT_EQ(cache.read_ref(commit), commit);  // a commit hash is its own ref
  EXPECT_FALSE(cache.read_ref("main"));
  ASSERT_TRUE(cache.write_ref("main", commit).ok());
  std::ifstream in(root / "models--org--name" / "refs" / "main");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, commit);  // no newline
  EXPECT_EQ(cache.read_ref("main"), commit);
  ASSERT_TRUE(cache.write_ref("refs/pr/1", commit).ok());  // nested, as huggingface_hub does
  EXPECT_EQ(cache.read_ref("refs/pr/1"), commit);

  fs::create_directories(fs::path(cache.blob_path("e")).parent_path());
  std::ofstream(cache.blob_path("e")) << "x";
  ASSERT_TRUE(cache.link_pointer(commit, "sub/file.json", "e").ok());
  EXPECT_EQ(fs::read_symlink(cache.pointer_path(commit, "sub/file.json")),
            fs::path("../../../blobs/e"));
  EXPECT_EQ(cache.lock_path("e"), (root / ".locks" / "models--org--name" / "e.lock").string());
  fs::remove_all(root);
}

TEST(Cache, EnvironmentAsHuggingfaceHub) {
  ::setenv("HF_HOME", "/tmp/hfhome", 1);
  ::unsetenv("HF_HUB_CACHE");
  ::unsetenv("HUGGINGFACE_HUB_CACHE");
  EXPECT_EQ(default_cache_dir(), "/tmp/hfhome/hub");
  ::setenv("HF_HUB_CACHE", "/tmp/hubcache", 1);
  EXPECT_EQ(default_cache_dir(), "/tmp/hubcache");
  ::unsetenv("HF_HUB_CACHE");
  ::unsetenv("HF_HOME");
  ::setenv("HF_ENDPOINT", "http://127.0.0.1:5/", 1);
  EXPECT_EQ(default_endpoint(), "http://127.0.0.1:5");
  ::unsetenv("HF_ENDPOINT");
  EXPECT_EQ(default_endpoint(), "https://huggingface.co");
  for (const char* v : {"1", "ON", "yes", "True"}) {
    ::setenv("HF_HUB_OFFLINE", v, 1);
    EXPECT_TRUE(offline_from_env()) << v;
  }
  ::setenv("HF_HUB_OFFLINE", "0", 1);
  EXPECT_FALSE(offline_from_env());
  ::unsetenv("HF_HUB_OFFLINE");
}

TEST(Digest, Sha256AndGitBlobSha1) {
  Digest sha(Digest::Kind::kSha256, 3);
  sha.update("abc", 3);
  EXPECT_EQ(sha.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Digest git(Digest::Kind::kGitBlobSha1, 6);  // `printf 'hello\n' | git hash-object --stdin`
  git.update("hello\n", 6);
  EXPECT_EQ(git.hex(), "ce013625030ba8dba906f756967f9e9ca394464a");
  EXPECT_EQ(Digest::kind_of_etag(std::string(64, 'a')), Digest::Kind::kSha256);
  EXPECT_EQ(Digest::kind_of_etag(std::string(40, '0')), Digest::Kind::kGitBlobSha1);
  EXPECT_FALSE(Digest::kind_of_etag("xyz"));
}

TEST(HubApi, EtagsQuotingAndErrors) {
  EXPECT_EQ(normalize_etag("W/\"abc\""), "abc");
  EXPECT_EQ(normalize_etag("\"abc\""), "abc");
  EXPECT_EQ(url_quote("sub dir/a+b.json", true), "sub%20dir/a%2Bb.json");
  EXPECT_EQ(url_quote("refs/pr/1", false), "refs%2Fpr%2F1");
  HubContext hub{"https://huggingface.co", "", "org/name"};
  HttpResponse r;
  r.status = 403;
  r.headers["x-error-code"] = "GatedRepo";
  Status s = hub_error(hub, r, "config.json");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("https://huggingface.co/org/name"), std::string::npos);
  r.status = 401;
  r.headers["x-error-code"] = "RepoNotFound";
  s = hub_error(hub, r, "revision main");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("HF_TOKEN"), std::string::npos);
  r.status = 404;
  r.headers["x-error-code"] = "RevisionNotFound";
  EXPECT_NE(hub_error(hub, r, "revision v9").message().find("revision v9 not found"),
            std::string::npos);
  r.headers.clear();
  r.status = 503;
  EXPECT_EQ(hub_error(hub, r, "x").code(), StatusCode::kUnavailable);
}

TEST(Resolve, LocalPathsUnchangedAndNoNetworkIsClear) {
  auto local = resolve("/some/local/model", Need::kModel, {});
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->path, "/some/local/model");
  EXPECT_EQ(local->repo_id, "");
  HubOptions o;
  o.endpoint = "http://127.0.0.1:9";  // nothing listens on the discard port
  o.cache_dir = (fs::temp_directory_path() / "kite-hub-empty-cache").string();
  o.offline = false;
  auto r = resolve("org/name", Need::kModel, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("cannot be reached"), std::string::npos)
      << r.status().message();
  o.offline = true;
  r = resolve("org/name", Need::kModel, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("HF_HUB_OFFLINE"), std::string::npos);
}

TEST(Progress, Render) {
  EXPECT_EQ(DownloadProgress::render("org/name", 1'200'000'000, 2'400'000'000, 10.0, 1, 3),
            "org/name   50% 1.2 GB/2.4 GB  120.0 MB/s  1/3 files");
  EXPECT_EQ(human_bytes(12), "12 B");
}

}  // namespace
}  // namespace kite::hub
