// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package android.content;
public abstract class Context {
  public abstract android.content.res.AssetManager getAssets();
  public abstract java.io.File getFilesDir();
  public abstract java.io.File getCacheDir();
}
