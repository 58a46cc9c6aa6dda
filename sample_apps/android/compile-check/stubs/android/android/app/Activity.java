// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package android.app;
public class Activity extends android.content.Context {
  @Override public android.content.res.AssetManager getAssets() { throw new UnsupportedOperationException(); }
  @Override public java.io.File getFilesDir() { throw new UnsupportedOperationException(); }
  @Override public java.io.File getCacheDir() { throw new UnsupportedOperationException(); }
  protected void onCreate(android.os.Bundle savedInstanceState) { throw new UnsupportedOperationException(); }
  protected void onDestroy() { throw new UnsupportedOperationException(); }
  public void setContentView(android.view.View view) { throw new UnsupportedOperationException(); }
  public final void runOnUiThread(Runnable action) { throw new UnsupportedOperationException(); }
}
