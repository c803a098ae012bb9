// @ts-self-types="./platform_packages.d.ts"
/**
 * platform_packages.js as the npm package ships it: empty, because there the
 * platform package is a dependency in node_modules (see that file).
 *
 * @module
 */

/** No `npm:` specifiers: `load.ts` resolves the platform package from node_modules. */
export const platformPackages = {};
